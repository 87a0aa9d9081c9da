//! `sync-engine serve` over real HTTP (reqwest), with the Stripe simulator and a real Postgres:
//! the acceptance scenarios 1–11 of the engine's HTTP API, the bearer token and the run cap.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stripe_fake::{Config, FakeStripe, Faults, Latency, Scope};
use test_support::engine_serve::EngineServe as Serve;
use test_support::{TestDb, bin_path};

/// The processes the server runs now (its connectors).
fn children(serve: &Serve) -> Vec<u32> {
    children_of(serve.child.id())
}

fn children_of(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // The fields after the command name (which may hold spaces) start after the last ')'.
        let rest = &stat[stat.rfind(')').unwrap_or(0) + 2..];
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        let ppid = fields.next().and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) && state != Some("Z") {
            found.push(child);
        }
    }
    found
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// The runtime the HTTP calls run on; the tests themselves stay synchronous, like the blocking
/// Postgres client and the simulator they use.
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

fn wait<F: std::future::Future>(future: F) -> F::Output {
    runtime().block_on(future)
}

fn fake(faults: Faults) -> FakeStripe {
    FakeStripe::start(Config {
        seed: 23,
        scale: 0.0,
        objects: vec![
            ("customers".into(), 400),
            ("products".into(), 30),
            ("prices".into(), 60),
        ],
        faults,
        ..Default::default()
    })
    .expect("the simulator starts")
}

const STREAMS: &[&str] = &["customers", "products", "prices"];

fn pipeline(fake: &FakeStripe, db: &TestDb, schema: &str, source: Value) -> Value {
    let mut stripe = json!({"api_key": "sk_test_fake", "base_url": fake.base_url(), "rate_limit": 1000, "endpoint_rate_limit": 500});
    if let Value::Object(extra) = source {
        for (k, v) in extra {
            stripe[k] = v;
        }
    }
    json!({
        "source": {"type": "stripe", "stripe": stripe},
        "destination": {"type": "postgres", "postgres": {"url": db.url(), "schema": schema}},
        "streams": STREAMS.iter().map(|s| json!({"name": s})).collect::<Vec<_>>()
    })
}

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn types(messages: &[Value]) -> Vec<&str> {
    messages
        .iter()
        .map(|m| m["type"].as_str().unwrap())
        .collect()
}

fn post(url: &str, body: &Value) -> reqwest::Response {
    wait(client().post(url).json(body).send()).unwrap()
}

/// The state the destination committed: the request's state with every streamed state on top.
fn committed(initial: &Value, messages: &[Value]) -> Value {
    let mut state = initial.clone();
    if state.is_null() {
        state = json!({"source": {"streams": {}, "global": {}}, "destination": {}, "sync_run": {}});
    }
    for m in messages {
        if m["type"] == "control" && m["control"]["control_type"] == "destination_tables" {
            // The tables setup reported; a table seen before with rows keeps its flag.
            for (stream, table) in m["control"]["destination_tables"].as_object().unwrap() {
                let before = &state["destination"]["tables"][stream];
                let rows = table["has_rows"] == true
                    || (before["identity"] == table["identity"] && before["rows"] == true);
                state["destination"]["tables"][stream] =
                    json!({"identity": table["identity"], "rows": rows});
            }
        }
        if m["type"] != "source_state" {
            continue;
        }
        let s = &m["source_state"];
        if s["state_type"] == "global" {
            state["source"]["global"] = s["data"].clone();
        } else {
            let stream = s["stream"].as_str().unwrap();
            state["source"]["streams"][stream] = s["data"].clone();
            if s["destination_stats"]["committed"].as_u64() > Some(0) {
                state["destination"]["tables"][stream]["rows"] = json!(true);
            }
        }
    }
    state
}

fn eof_of(messages: &[Value]) -> &Value {
    let last = messages.last().expect("some messages");
    assert_eq!(last["type"], "eof", "the eof is last: {messages:?}");
    assert_eq!(
        types(messages).iter().filter(|t| **t == "eof").count(),
        1,
        "exactly one eof"
    );
    &last["eof"]
}

/// Rows of a schema's table: id → the object without the source's stamps.
fn rows(db: &TestDb, schema: &str, stream: &str) -> BTreeMap<String, Value> {
    db.client()
        .query(
            &format!("SELECT id, _raw_data::text FROM \"{schema}\".{stream} WHERE NOT _deleted"),
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

fn assert_rows_equal_the_data(fake: &FakeStripe, db: &TestDb, schema: &str) {
    for stream in STREAMS {
        let want: BTreeMap<String, Value> = fake.objects_by_id(Scope::test(None), stream).unwrap();
        assert_eq!(rows(db, schema, stream), want, "{schema}.{stream}");
    }
}

fn is_uuid_v4(id: &str) -> bool {
    id.len() == 36 && &id[14..15] == "4" && id.chars().filter(|c| *c == '-').count() == 4
}

fn lists(fake: &FakeStripe, endpoint: &str) -> u64 {
    fake.stats().by_endpoint.get(endpoint).copied().unwrap_or(0)
}

#[test]
fn health_and_request_ids() {
    let serve = Serve::start(&[]);
    let a = wait(client().get(serve.at("/health")).send()).unwrap();
    assert_eq!(a.status(), 200);
    let id_a = a.headers()["sync-engine-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = wait(a.json()).unwrap();
    assert_eq!(body["ok"], true);
    assert!(body["hostname"].is_string());
    let b = post(&serve.at("/pipeline_sync"), &json!({}));
    assert_eq!(b.status(), 400);
    let id_b = b.headers()["sync-engine-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(is_uuid_v4(&id_a) && is_uuid_v4(&id_b), "{id_a} {id_b}");
    assert_ne!(id_a, id_b, "a fresh id per response");
}

#[test]
fn check_answers_one_status_per_side() {
    let fake = fake(Faults::default());
    let db = TestDb::new();
    let serve = Serve::start(&[]);
    let p = pipeline(&fake, &db, "chk", json!({}));
    let response = post(&serve.at("/pipeline_check"), &json!({"pipeline": p}));
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let messages = lines(&wait(response.text()).unwrap());
    let tags: Vec<&str> = messages
        .iter()
        .map(|m| {
            assert_eq!(m["connection_status"]["status"], "succeeded", "{m}");
            m["connection_status"]["_emitted_by"].as_str().unwrap()
        })
        .collect();
    assert_eq!(tags, vec!["source/stripe", "destination/postgres"]);
    let only = post(
        &serve.at("/pipeline_check"),
        &json!({"pipeline": p, "only": "source"}),
    );
    let messages = lines(&wait(only.text()).unwrap());
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0]["connection_status"]["_emitted_by"],
        "source/stripe"
    );
}

#[test]
fn bad_requests_are_400_before_anything_runs() {
    let fake = fake(Faults::default());
    let db = TestDb::new();
    let serve = Serve::start(&[]);
    // A destination nobody could reach: a 400 proves nothing tried to connect.
    let mut p = pipeline(&fake, &db, "bad", json!({}));
    p["destination"]["postgres"]["url"] = json!("postgres://nobody@127.0.0.1:1/db");
    let before = fake.stats().total;
    let client = client();
    let cases: Vec<(reqwest::RequestBuilder, &str)> = vec![
        (client.post(serve.at("/pipeline_sync")), "body"),
        (
            client
                .post(serve.at("/pipeline_sync"))
                .header("content-type", "application/json")
                .body("{not json"),
            "body: invalid JSON",
        ),
        (
            client.post(serve.at("/pipeline_sync")).json(&json!({"pipeline": {"source": {"type": "nope"}, "destination": p["destination"]}})),
            "unknown source connector \"nope\"",
        ),
        (
            client.post(serve.at("/pipeline_sync")).json(&json!({"pipeline": {"source": {"type": "stripe", "stripe": {"api_key": 5}}, "destination": p["destination"]}})),
            "api_key",
        ),
        (
            client.post(serve.at("/pipeline_check")).json(&json!({"pipeline": {"source": {"type": "stripe", "stripe": {"base_url": "x"}}, "destination": p["destination"]}})),
            "api_key",
        ),
        (
            client.post(serve.at("/pipeline_sync")).json(&json!({"pipeline": p, "time_limit": "soon"})),
            "time_limit",
        ),
        (
            client.post(serve.at("/pipeline_sync")).json(&json!({"pipeline": {"source": p["source"]}})),
            "pipeline.destination",
        ),
    ];
    for (request, names) in cases {
        let response = wait(request.send()).unwrap();
        assert_eq!(response.status(), 400);
        assert!(response.headers().contains_key("sync-engine-request-id"));
        let body: Value = wait(response.json()).unwrap();
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(names), "{error:?} should name {names:?}");
    }
    assert_eq!(fake.stats().total, before, "no Stripe request was made");
    let unknown = wait(client.get(serve.at("/meta/sources/nope")).send()).unwrap();
    assert_eq!(unknown.status(), 404);
}

#[test]
fn discover_answers_one_catalog() {
    let fake = fake(Faults::default());
    let db = TestDb::new();
    let serve = Serve::start(&[]);
    let p = pipeline(&fake, &db, "disc", json!({}));
    let response = post(
        &serve.at("/source_discover"),
        &json!({"source": p["source"]}),
    );
    assert_eq!(response.status(), 200);
    let messages = lines(&wait(response.text()).unwrap());
    assert_eq!(types(&messages), vec!["catalog"]);
    let names: Vec<&str> = messages[0]["catalog"]["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    for stream in STREAMS {
        assert!(names.contains(stream), "{stream} in {names:?}");
    }
}

#[test]
fn a_sync_streams_states_and_one_eof_and_resumes_from_it() {
    let fake = fake(Faults::default());
    let db = TestDb::new();
    let serve = Serve::start(&[]);
    let p = pipeline(&fake, &db, "s1", json!({}));
    let response = post(&serve.at("/pipeline_sync"), &json!({"pipeline": p}));
    assert_eq!(response.status(), 200);
    let messages = lines(&wait(response.text()).unwrap());
    let kinds = types(&messages);
    assert!(
        !kinds.contains(&"record"),
        "records are never streamed back"
    );
    let last_state = kinds.iter().rposition(|t| *t == "source_state").unwrap();
    assert!(
        kinds[last_state..].contains(&"progress"),
        "progress after the states: {kinds:?}"
    );
    let eof = eof_of(&messages);
    assert_eq!(eof["status"], "succeeded");
    assert_eq!(eof["has_more"], false);
    assert_eq!(eof["ending_state"], committed(&Value::Null, &messages));
    assert_rows_equal_the_data(&fake, &db, "s1");

    let listed = lists(&fake, "GET /v1/customers");
    let again = post(
        &serve.at("/pipeline_sync"),
        &json!({"pipeline": p, "state": eof["ending_state"]}),
    );
    let messages = lines(&wait(again.text()).unwrap());
    assert_eq!(eof_of(&messages)["has_more"], false);
    assert_eq!(
        lists(&fake, "GET /v1/customers"),
        listed,
        "completed streams are not listed again"
    );
}

#[test]
fn time_limited_syncs_repeated_until_done_give_exactly_the_data() {
    let fake = fake(Faults {
        latency: Some(Latency {
            min_ms: 150,
            max_ms: 150,
        }),
        ..Default::default()
    });
    let db = TestDb::new();
    let serve = Serve::start(&[]);
    let p = pipeline(&fake, &db, "tl", json!({"max_concurrency": 1}));
    let mut state = Value::Null;
    let mut rounds = 0;
    let mut cut_short = 0;
    loop {
        rounds += 1;
        assert!(rounds <= 20, "no end after 20 time-limited syncs");
        let started = Instant::now();
        let response = post(
            &serve.at("/pipeline_sync"),
            &json!({"pipeline": p, "state": state, "time_limit": 2}),
        );
        let messages = lines(&wait(response.text()).unwrap());
        let took = started.elapsed();
        assert!(took < Duration::from_secs(4), "a 2 s limit took {took:?}");
        let eof = eof_of(&messages).clone();
        assert_ne!(eof["status"], "failed", "{messages:?}");
        assert_eq!(eof["ending_state"], committed(&state, &messages));
        state = eof["ending_state"].clone();
        if eof["has_more"] == false {
            break;
        }
        cut_short += 1;
    }
    assert!(cut_short >= 1, "the limit cut at least one sync short");
    assert_rows_equal_the_data(&fake, &db, "tl");
}

#[test]
fn a_key_revoked_mid_stream_fails_in_band_keeping_what_was_committed() {
    let fake = fake(Faults {
        latency: Some(Latency {
            min_ms: 100,
            max_ms: 100,
        }),
        ..Default::default()
    });
    let db = TestDb::new();
    let serve = Serve::start(&[]);
    let p = pipeline(
        &fake,
        &db,
        "rv",
        json!({"max_concurrency": 1, "max_retries": 0}),
    );
    let mut response = post(&serve.at("/pipeline_sync"), &json!({"pipeline": p}));
    assert_eq!(response.status(), 200);
    let mut text = String::new();
    while !text.contains("\"source_state\"") {
        let chunk = wait(response.chunk()).unwrap().expect("more lines");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    fake.set_faults(Faults {
        latency: Some(Latency {
            min_ms: 100,
            max_ms: 100,
        }),
        revoked_keys: vec!["sk_test_fake".into()],
        ..Default::default()
    })
    .unwrap();
    while let Some(chunk) = wait(response.chunk()).unwrap() {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let messages = lines(&text);
    let eof = eof_of(&messages);
    assert_eq!(eof["status"], "failed");
    assert!(
        messages.iter().any(|m| m["type"] == "connection_status"
            && m["connection_status"]["status"] == "failed"
            && m["connection_status"]["message"]
                .as_str()
                .is_some_and(|s| s.contains("401") || s.contains("Expired"))),
        "{messages:?}"
    );
    assert_eq!(eof["ending_state"], committed(&Value::Null, &messages));
}

#[test]
fn a_client_that_goes_away_cancels_the_sync() {
    let fake = fake(Faults {
        latency: Some(Latency {
            min_ms: 200,
            max_ms: 200,
        }),
        ..Default::default()
    });
    let db = TestDb::new();
    let serve = Serve::start(&[]);
    let p = pipeline(&fake, &db, "dc", json!({"max_concurrency": 2}));
    let mut response = post(&serve.at("/pipeline_sync"), &json!({"pipeline": p}));
    let mut text = String::new();
    while !text.contains("\"source_state\"") {
        let chunk = wait(response.chunk()).unwrap().expect("more lines");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(!children(&serve).is_empty(), "the connectors run");
    drop(response);
    let gone = fake.stats().total;
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        children(&serve).is_empty(),
        "no connector left 2 s after the client went away: {:?}",
        children(&serve)
    );
    let after = fake.stats().total;
    assert!(
        after - gone <= 2,
        "{} Stripe requests after the client went away",
        after - gone
    );
    assert!(
        serve.log().contains("the caller went away"),
        "{}",
        serve.log()
    );
}

#[test]
fn pushed_events_upsert_exactly_their_objects_without_listing() {
    let fake = fake(Faults::default());
    let db = TestDb::new();
    let serve = Serve::start(&[]);
    let customers = fake.objects(Scope::test(None), "customers").unwrap();
    let ids: Vec<String> = customers[..3]
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    for (i, id) in ids.iter().enumerate() {
        fake.update(
            Scope::test(None),
            "customers",
            id,
            json!({"name": format!("pushed {i}")}),
        )
        .unwrap();
    }
    let events: Vec<Value> = fake
        .events(Scope::test(None))
        .unwrap()
        .into_iter()
        .filter(|e| {
            e["type"] == "customer.updated"
                && e["data"]["object"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("pushed "))
        })
        .collect();
    assert_eq!(events.len(), 3);
    let mut p = pipeline(&fake, &db, "push", json!({}));
    p["streams"] = json!([{"name": "customers"}]);
    fake.reset_stats();
    let stdin: Vec<Value> = events
        .iter()
        .map(|e| json!({"type": "source_input", "source_input": e}))
        .collect();
    let response = post(
        &serve.at("/pipeline_sync"),
        &json!({"pipeline": p, "stdin": stdin}),
    );
    let messages = lines(&wait(response.text()).unwrap());
    assert_eq!(eof_of(&messages)["status"], "succeeded", "{messages:?}");
    let stored = rows(&db, "push", "customers");
    let names: BTreeMap<String, String> = stored
        .iter()
        .map(|(id, c)| {
            (
                id.clone(),
                c["name"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let want: BTreeMap<String, String> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.clone(), format!("pushed {i}")))
        .collect();
    assert_eq!(names, want);
    assert_eq!(lists(&fake, "GET /v1/customers"), 0, "no list call");
    assert_eq!(lists(&fake, "GET /v1/events"), 0, "no events call");
    // Discover reads the account, and the read again.
    let whole_run_account_reads = lists(&fake, "GET /v1/account");

    // The same as NDJSON: a start message, then the inputs.
    let mut body = json!({"type": "start", "start": {"pipeline": p}}).to_string();
    for line in &stdin {
        body.push('\n');
        body.push_str(&line.to_string());
    }
    let response = wait(
        client()
            .post(serve.at("/pipeline_sync"))
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send(),
    )
    .unwrap();
    let messages = lines(&wait(response.text()).unwrap());
    assert_eq!(eof_of(&messages)["status"], "succeeded", "{messages:?}");

    // With the catalog an earlier discover gave (as sync-service sends webhook batches after
    // the first), the run neither discovers nor sets up: the read's own account lookup and
    // the re-read of an object changed in the run's first second are all it asks Stripe.
    let discovered = lines(
        &wait(
            post(
                &serve.at("/source_discover"),
                &json!({"source": p["source"]}),
            )
            .text(),
        )
        .unwrap(),
    );
    let catalog = discovered[0]["catalog"].clone();
    fake.update(
        Scope::test(None),
        "customers",
        &ids[0],
        json!({"name": "pushed again"}),
    )
    .unwrap();
    let again: Vec<Value> = fake
        .events(Scope::test(None))
        .unwrap()
        .into_iter()
        .filter(|e| e["data"]["object"]["name"] == "pushed again")
        .map(|e| json!({"type": "source_input", "source_input": e}))
        .collect();
    assert_eq!(again.len(), 1);
    fake.reset_stats();
    let response = post(
        &serve.at("/pipeline_sync"),
        &json!({"pipeline": p, "stdin": again, "prepared_catalog": catalog}),
    );
    let messages = lines(&wait(response.text()).unwrap());
    assert_eq!(eof_of(&messages)["status"], "succeeded", "{messages:?}");
    assert_eq!(
        rows(&db, "push", "customers")[&ids[0]]["name"],
        "pushed again"
    );
    let asked = fake.stats().by_endpoint;
    assert_eq!(
        asked.get("GET /v1/account").copied(),
        Some(whole_run_account_reads - 1),
        "the read's own account lookup, not discover's: {asked:?}"
    );
    assert!(
        asked
            .keys()
            .all(|k| k == "GET /v1/account" || k == "GET /v1/customers/{id}"),
        "no list, no webhook endpoint, nothing of setup: {asked:?}"
    );

    // What is not a catalog is refused, naming the field.
    let response = post(
        &serve.at("/pipeline_sync"),
        &json!({"pipeline": p, "stdin": again, "prepared_catalog": {"streams": 5}}),
    );
    assert_eq!(response.status(), 400);
    let answer: Value = wait(response.json()).unwrap();
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("prepared_catalog: ")),
        "{answer}"
    );
}

#[test]
fn a_batch_answers_json_and_the_document_lists_every_route() {
    let fake = fake(Faults::default());
    let db = TestDb::new();
    let serve = Serve::start(&[]);
    let p = pipeline(&fake, &db, "batch", json!({}));
    let response = post(
        &serve.at("/pipeline_sync_batch"),
        &json!({"pipeline": p, "state_limit": 1}),
    );
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let eof: Value = wait(response.json()).unwrap();
    assert_eq!(eof["has_more"], true);
    assert_eq!(eof["reason"], "state_limit");

    let document: Value = wait(async {
        client()
            .get(serve.at("/openapi.json"))
            .send()
            .await?
            .json()
            .await
    })
    .unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();
    let routes = [
        ("get", "/health"),
        ("post", "/pipeline_check"),
        ("post", "/pipeline_setup"),
        ("post", "/pipeline_teardown"),
        ("post", "/source_discover"),
        ("post", "/pipeline_read"),
        ("post", "/pipeline_write"),
        ("post", "/pipeline_sync"),
        ("post", "/pipeline_sync_batch"),
        ("get", "/meta/sources"),
        ("get", "/meta/sources/{type}"),
        ("get", "/meta/destinations"),
        ("get", "/meta/destinations/{type}"),
        ("get", "/openapi.json"),
    ];
    assert_eq!(paths.len(), routes.len(), "{:?}", paths.keys());
    for (method, path) in routes {
        assert!(
            paths[path][method].is_object(),
            "{method} {path} documented"
        );
        // And served: a documented route never answers 404 or 405.
        let url = serve.at(&path
            .replace("{type}", "stripe")
            .replace("destinations/stripe", "destinations/postgres"));
        let response = match method {
            "get" => wait(client().get(&url).send()).unwrap(),
            _ => wait(client().post(&url).json(&json!({})).send()).unwrap(),
        };
        assert!(
            ![404, 405].contains(&response.status().as_u16()),
            "{method} {path} answered {}",
            response.status()
        );
    }
    let schemas = document["components"]["schemas"].as_object().unwrap();
    for name in [
        "PipelineConfig",
        "SourceConfig",
        "SourceStripeConfig",
        "DestinationConfig",
        "DestinationPostgresConfig",
        "RecordMessage",
        "SourceStateMessage",
        "CatalogMessage",
        "LogMessage",
        "SpecMessage",
        "ConnectionStatusMessage",
        "StreamStatusMessage",
        "ControlMessage",
        "ProgressMessage",
        "ProgressPayload",
        "RunStatus",
        "StreamProgress",
        "EofMessage",
        "EofPayload",
        "SyncState",
        "SourceState",
        "SourceInputMessage",
        "Message",
        "DiscoverOutput",
        "DestinationOutput",
        "SyncOutput",
        "CheckOutput",
        "SetupOutput",
        "TeardownOutput",
    ] {
        assert!(schemas.contains_key(name), "component {name}");
    }
    test_support::openapi::assert_valid(&document);
    // docs/http-api.md lists exactly these routes.
    test_support::openapi::assert_documented(&document, "http-api.md");
}

#[test]
fn a_token_is_required_when_set_and_the_cap_answers_429() {
    let fake = fake(Faults {
        latency: Some(Latency {
            min_ms: 300,
            max_ms: 300,
        }),
        ..Default::default()
    });
    let db = TestDb::new();
    let serve = Serve::start(&["--api-token", "s3cret-token", "--max-concurrent-runs", "1"]);
    let health = wait(client().get(serve.at("/health")).send()).unwrap();
    assert_eq!(health.status(), 200, "/health needs no token");
    let p = pipeline(&fake, &db, "tok", json!({"max_concurrency": 1}));
    let none = post(&serve.at("/pipeline_check"), &json!({"pipeline": p}));
    assert_eq!(none.status(), 401);
    let wrong = wait(
        client()
            .post(serve.at("/pipeline_check"))
            .bearer_auth("nope")
            .json(&json!({"pipeline": p}))
            .send(),
    )
    .unwrap();
    assert_eq!(wrong.status(), 401);
    let sync = |body: Value| {
        client()
            .post(serve.at("/pipeline_sync"))
            .bearer_auth("s3cret-token")
            .json(&body)
            .send()
    };
    let mut first = wait(sync(json!({"pipeline": p}))).unwrap();
    assert_eq!(first.status(), 200);
    let _ = wait(first.chunk());
    let second = wait(sync(json!({"pipeline": p}))).unwrap();
    assert_eq!(second.status(), 429);
    assert!(second.headers().contains_key("retry-after"));
    drop(first);
    assert!(
        !serve.log().contains("s3cret-token"),
        "the token is never logged"
    );
}

fn cli_sync(fake: &FakeStripe, db: &TestDb, schema: &str, state: &Path, engine: Option<&str>) {
    let mut cmd = Command::new(bin_path("sync-engine"));
    cmd.args([
        "sync",
        "--stripe-api-key",
        "sk_test_fake",
        "--stripe-base-url",
        &fake.base_url(),
        "--source-config",
        r#"{"rate_limit":1000,"endpoint_rate_limit":500}"#,
        "--postgres-url",
        db.url(),
        "--schema",
        schema,
        "--streams",
        &STREAMS.join(","),
        "--output",
        "ndjson",
        "--state-file",
    ])
    .arg(state)
    .env_remove("STRIPE_API_KEY")
    .env_remove("DATABASE_URL")
    .env_remove("SYNC_ENGINE_API_TOKEN");
    if let Some(url) = engine {
        cmd.args(["--engine-url", url]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Stream states without their run-specific stamps (generations and times differ by run).
fn shape(state_file: &Path) -> Value {
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(state_file).unwrap()).unwrap();
    let streams = saved["state"]["source"]["streams"].as_object().unwrap();
    streams
        .iter()
        .map(|(name, s)| (name.clone(), json!({"phase": s["phase"], "v": s["v"]})))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

#[test]
fn a_sync_through_serve_equals_the_in_process_one() {
    let fake = fake(Faults::default());
    let db = TestDb::new();
    let serve = Serve::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (here, there) = (dir.path().join("here.json"), dir.path().join("there.json"));
    cli_sync(&fake, &db, "here", &here, None);
    cli_sync(&fake, &db, "there", &there, Some(&serve.url));
    for stream in STREAMS {
        assert_eq!(
            rows(&db, "here", stream),
            rows(&db, "there", stream),
            "{stream}"
        );
    }
    assert_rows_equal_the_data(&fake, &db, "there");
    assert_eq!(shape(&here), shape(&there));
    // The remote run's state resumes like a local one: nothing listed again.
    let listed = lists(&fake, "GET /v1/customers");
    cli_sync(&fake, &db, "there", &there, Some(&serve.url));
    assert_eq!(lists(&fake, "GET /v1/customers"), listed);
}

#[test]
fn the_explorer_shows_the_configured_pipeline_with_its_row_counts_behind_the_login() {
    let fake = fake(Faults::default());
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    cli_sync(&fake, &db, "explored", &dir.path().join("state.json"), None);
    let settings = dir.path().join("pipeline.json");
    std::fs::write(
        &settings,
        json!({
            "source": {"name": "stripe", "config": {"api_key": "sk_test_fake", "base_url": fake.base_url()}},
            "destination": {"name": "postgres", "config": {"url": db.url(), "schema": "explored"}}
        })
        .to_string(),
    )
    .unwrap();
    let serve = Serve::start(&[
        "--api-token",
        "explorer-token",
        "--explorer-config",
        settings.to_str().unwrap(),
    ]);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |path: &str, cookie: Option<&str>| {
        let mut request = browser.get(serve.at(path));
        if let Some(c) = cookie {
            request = request.header("cookie", c);
        }
        wait(async { request.send().await.unwrap() })
    };
    // A page without a session goes to the login form, which keeps where it was going.
    let anonymous = get("/explorer?q=inv", None);
    assert_eq!(anonymous.status(), 303);
    assert_eq!(
        anonymous.headers()["location"],
        "/login?next=/explorer%3Fq%3Dinv"
    );
    assert_eq!(get("/", None).status(), 303);
    let login = |token: &str| {
        wait(async {
            browser
                .post(serve.at("/login"))
                .form(&[("token", token), ("next", "/explorer")])
                .send()
                .await
                .unwrap()
        })
    };
    assert_eq!(login("wrong").status(), 401);
    let accepted = login("explorer-token");
    assert_eq!(accepted.status(), 303);
    let cookie = accepted.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("explorer-token"),
        "the cookie does not hold the token"
    );
    let session = cookie.split(';').next().unwrap().to_owned();

    let index = get("/explorer", Some(&session));
    assert_eq!(index.status(), 200);
    let html = wait(index.text()).unwrap();
    assert!(
        html.contains("href=\"/explorer/tables/invoices\""),
        "every stream is a card"
    );
    let customers = get("/explorer/tables/customers", Some(&session));
    let html = wait(customers.text()).unwrap();
    let in_table = rows(&db, "explored", "customers").len();
    assert!(in_table > 100);
    assert!(
        html.contains(&format!(
            "<dd class=\"num\" id=\"row-count\">{in_table}</dd>"
        )),
        "the row count of the synced table ({in_table}): {html}"
    );
    assert!(
        html.contains("data-relation=\"invoices\""),
        "invoices refer to customers"
    );
    // An API route takes the cookie for reading, and refuses a change without the console's header.
    let change = wait(async {
        browser
            .post(serve.at("/pipeline_check"))
            .header("cookie", &session)
            .json(&json!({}))
            .send()
            .await
            .unwrap()
    });
    assert_eq!(change.status(), 401);
    assert!(
        !serve.log().contains("explorer-token"),
        "the token is never logged"
    );

    // Without --explorer-config, the page says how to get one.
    let bare = Serve::start(&[]);
    let answer = wait(async { browser.get(bare.at("/explorer")).send().await.unwrap() });
    assert_eq!(answer.status(), 503);
    assert!(wait(answer.text()).unwrap().contains("--explorer-config"));
}
