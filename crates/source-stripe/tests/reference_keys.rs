//! The reference implementation's source config keys, through the real `source-stripe` binary
//! against the simulator: each means what it means there (`poll_events`, `webhook_port`,
//! `account_created`, `livemode`, `revalidate_objects`), `websocket` is refused naming what to
//! use instead, and `setup` hands back the complete config as the reference's does, which read
//! back gives the same records as the config it completes.

use std::collections::BTreeSet;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stripe_fake::{Config, FakeStripe, Scope};
use test_support::process::{free_port, terminate};
use test_support::{Bin, Finished, bin_path, lines_of};

fn fake() -> FakeStripe {
    FakeStripe::start(Config {
        seed: 57,
        scale: 0.0,
        objects: vec![("customers".into(), 40), ("products".into(), 5)],
        accounts: 1,
        ..Default::default()
    })
    .expect("the simulator starts")
}

fn source_config(fake: &FakeStripe, extra: Value) -> Value {
    let mut c = json!({"api_key": "sk_test_fake", "base_url": fake.base_url()});
    if let (Value::Object(c), Value::Object(e)) = (&mut c, extra) {
        c.extend(e);
    }
    c
}

const CUSTOMERS: &str = r#"{"streams":[{"stream":{"name":"customers","primary_key":[["id"]]},"sync_mode":"incremental","destination_sync_mode":"append_dedup"}]}"#;

fn run(subcommand: &str, config: &Value, extra: &[&str]) -> Finished {
    Bin::new("source-stripe")
        .arg(subcommand)
        .json("config", config)
        .args(extra)
        .run()
}

fn read(config: &Value, state: Option<&Value>) -> Finished {
    let mut args = vec!["--catalog", CUSTOMERS];
    let state_text = state.map(Value::to_string);
    if let Some(state) = &state_text {
        args.extend(["--state", state]);
    }
    let out = run("read", config, &args);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    out
}

/// The customers a read emitted: id → the object without the source's stamps.
fn customers(out: &Finished) -> std::collections::BTreeMap<String, Value> {
    out.of_type("record")
        .into_iter()
        .filter(|r| r["stream"] == "customers")
        .map(|r| {
            let mut data = r["data"].clone();
            data.as_object_mut().unwrap().remove("_updated_at");
            (data["id"].as_str().unwrap().to_owned(), data)
        })
        .collect()
}

/// The state to resume from: the last global state and each stream's last state.
fn final_state(out: &Finished) -> Value {
    let mut streams = serde_json::Map::new();
    let mut global = Value::Null;
    for s in out.of_type("source_state") {
        match s["state_type"].as_str() {
            Some("global") => global = s["data"].clone(),
            _ => {
                streams.insert(s["stream"].as_str().unwrap().to_owned(), s["data"].clone());
            }
        }
    }
    json!({"streams": streams, "global": global})
}

fn customer_count(fake: &FakeStripe) -> usize {
    fake.objects(Scope::test(None), "customers").unwrap().len()
}

/// `GET /v1/account` of the simulator's platform, as the key sees it.
fn platform_account(fake: &FakeStripe) -> Value {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            reqwest::Client::new()
                .get(format!("{}/v1/account", fake.base_url()))
                .bearer_auth("sk_test_fake")
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        })
}

#[test]
fn setup_hands_back_the_complete_config_which_reads_as_the_config_it_completes() {
    let fake = fake();
    let given = source_config(&fake, json!({"rate_limit": 50}));
    let out = run("setup", &given, &[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let controls = out.of_type("control");
    assert_eq!(controls.len(), 1, "one control message: {}", out.stdout);
    assert_eq!(controls[0]["control_type"], "source_config");
    let account = platform_account(&fake);
    let mut expected = given.clone();
    expected["account_id"] = account["id"].clone();
    expected["account_created"] = account["created"].clone();
    expected["api_version"] = json!(stripe_catalog::catalog().api_version);
    assert_eq!(
        controls[0]["source_config"], expected,
        "the config as given, with the account and the API version"
    );
    assert!(account["created"].is_i64(), "{account}");

    // Run again with it: complete already, nothing to hand back.
    let complete = controls[0]["source_config"].clone();
    let again = run("setup", &complete, &[]);
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert!(again.of_type("control").is_empty(), "{}", again.stdout);

    // Read back, it reads what the config it completes reads: account_id naming the key's own
    // account is the key's own (no Stripe-Account), and its bound is the account's creation.
    let plain = read(&given, None);
    let completed = read(&complete, None);
    assert_eq!(customers(&completed), customers(&plain));
    assert_eq!(customers(&plain).len(), customer_count(&fake));
    // And the platform's own events (they name no account) are its own.
    let customer = fake.objects(Scope::test(None), "customers").unwrap()[0].clone();
    let event = json!({"id": "evt_own", "object": "event", "type": "customer.updated",
        "created": fake.now(), "livemode": false, "data": {"object": customer}});
    let input = format!(
        "{}\n",
        json!({"type": "source_input", "source_input": event})
    );
    let pushed = Bin::new("source-stripe")
        .arg("read")
        .json("config", &complete)
        .args(["--catalog", CUSTOMERS, "--input", "-"])
        .stdin(input)
        .run();
    assert_eq!(pushed.code, Some(0), "{}", pushed.stderr);
    assert_eq!(customers(&pushed).len(), 1, "{}", pushed.stderr);

    // With webhook_url, the new endpoint's secret is part of the same complete config.
    let with_url = source_config(
        &fake,
        json!({"webhook_url": "https://sync.example.com/hooks"}),
    );
    let out = run("setup", &with_url, &[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let config = &out.of_type("control")[0]["source_config"];
    assert!(
        config["webhook_secret"]
            .as_str()
            .is_some_and(|s| s.starts_with("whsec_")),
        "{config}"
    );
    assert_eq!(config["api_key"], "sk_test_fake");
    assert_eq!(config["account_id"], account["id"]);
    assert!(
        !out.stderr.contains("sk_test_fake") && !out.stderr.contains("whsec_"),
        "no secret in the logs: {}",
        out.stderr
    );
}

#[test]
fn poll_events_reads_the_events_after_the_backfill_and_false_reads_none() {
    let fake = fake();
    for poll in [true, false] {
        let config = source_config(&fake, json!({"poll_events": poll}));
        let first = read(&config, None);
        assert_eq!(
            customers(&first).len(),
            customer_count(&fake),
            "{}",
            first.stderr
        );
        let id = customers(&first).into_keys().next().unwrap();
        fake.update(
            Scope::test(None),
            "customers",
            &id,
            json!({"metadata": {"poll": poll.to_string()}}),
        )
        .unwrap();
        let second = read(&config, Some(&final_state(&first)));
        let changed = customers(&second);
        if poll {
            assert_eq!(
                changed.get(&id).map(|c| c["metadata"]["poll"].clone()),
                Some(json!("true")),
                "the update arrives from /v1/events: {}",
                second.stderr
            );
        } else {
            assert!(
                changed.is_empty(),
                "no events are read: {changed:?} {}",
                second.stderr
            );
        }
    }
}

/// POSTs a body to the source's listener at `path`; the status code.
fn post(port: u16, path: &str, body: &str, signature: &str) -> u16 {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            reqwest::Client::new()
                .post(format!("http://127.0.0.1:{port}{path}"))
                .header("stripe-signature", signature)
                .body(body.to_owned())
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
}

#[test]
fn webhook_port_receives_signed_webhooks_after_the_backfill_at_any_path() {
    let fake = fake();
    let port = free_port();
    let secret = "whsec_reference_port";
    let config = source_config(
        &fake,
        json!({"webhook_port": port, "webhook_secret": secret, "poll_events": false}),
    );
    let mut child = Command::new(bin_path("source-stripe"))
        .args([
            "read",
            "--config",
            &config.to_string(),
            "--catalog",
            CUSTOMERS,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never listening"
        );
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            panic!("the source ended ({status}) without listening: {stderr}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let id = fake.objects(Scope::test(None), "customers").unwrap()[3]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    fake.update(
        Scope::test(None),
        "customers",
        &id,
        json!({"name": "by webhook"}),
    )
    .unwrap();
    let event = fake.events(Scope::test(None)).unwrap()[0].to_string();
    let now = stripe_fake::real_unix_now();
    let signed = stripe_fake::signature_header(event.as_bytes(), secret, now);
    let forged = stripe_fake::signature_header(event.as_bytes(), "whsec_other", now);
    // The reference's listener takes a POST on any path, as `stripe listen` forwards it.
    assert_eq!(post(port, "/", &event, &forged), 401);
    assert_eq!(post(port, "/", &event, &signed), 200);
    assert_eq!(post(port, "/webhooks", &event, &signed), 200);
    assert!(terminate(child.id()));
    let out = child.wait_with_output().unwrap();
    let finished = Finished::from(out);
    assert_eq!(finished.code, Some(0), "{}", finished.stderr);
    let emitted = customers(&finished);
    assert_eq!(
        emitted.get(&id).map(|c| c["name"].clone()),
        Some(json!("by webhook")),
        "{}",
        finished.stderr
    );
}

#[test]
fn account_created_bounds_the_backfill_as_start_date_does() {
    let fake = fake();
    let mut created: Vec<i64> = fake
        .objects(Scope::test(None), "customers")
        .unwrap()
        .iter()
        .map(|c| c["created"].as_i64().unwrap())
        .collect();
    created.sort();
    let bound = created[created.len() / 2];
    let expected: BTreeSet<String> = fake
        .objects(Scope::test(None), "customers")
        .unwrap()
        .iter()
        .filter(|c| c["created"].as_i64().unwrap() >= bound)
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    let bounded = read(
        &source_config(&fake, json!({"account_created": bound, "events": false})),
        None,
    );
    let read_ids: BTreeSet<String> = customers(&bounded).into_keys().collect();
    assert_eq!(read_ids, expected, "{}", bounded.stderr);
    assert!(
        expected.len() < customer_count(&fake),
        "the bound leaves some out"
    );
    let start_date = chrono::DateTime::from_timestamp(bound, 0)
        .unwrap()
        .to_rfc3339();
    let by_date = read(
        &source_config(&fake, json!({"start_date": start_date, "events": false})),
        None,
    );
    assert_eq!(customers(&by_date), customers(&bounded));
}

fn refused(config: &Value) -> String {
    let out = run("check", config, &[]);
    assert_eq!(out.code, Some(2), "{config}: {} {}", out.stdout, out.stderr);
    let status = &out.of_type("connection_status")[0];
    assert_eq!(status["status"], "failed");
    assert_eq!(status["failure_type"], "config_error");
    let message = status["message"].as_str().unwrap().to_owned();
    assert!(!message.contains("sk_test_fake") && !out.stderr.contains("sk_test_fake"));
    message
}

#[test]
fn livemode_must_agree_with_the_key_and_the_websocket_is_refused_naming_what_to_use() {
    let fake = fake();
    let message = refused(&source_config(&fake, json!({"livemode": true})));
    assert!(
        message.contains("livemode is true") && message.contains("api_key is a test-mode key"),
        "{message}"
    );
    let agreeing = run(
        "check",
        &source_config(&fake, json!({"livemode": false})),
        &[],
    );
    assert_eq!(agreeing.code, Some(0), "{}", agreeing.stderr);
    assert_eq!(
        agreeing.of_type("connection_status")[0]["status"],
        "succeeded"
    );

    let message = refused(&source_config(&fake, json!({"websocket": true})));
    assert!(
        message.contains("websocket") && message.contains("webhook_port"),
        "{message}"
    );
    let message = refused(&source_config(
        &fake,
        json!({"poll_events": true, "events": false}),
    ));
    assert!(
        message.contains("poll_events") && message.contains("events"),
        "{message}"
    );
    let message = refused(&source_config(
        &fake,
        json!({"revalidate_objects": ["customerz"]}),
    ));
    assert!(message.contains("\"customerz\""), "{message}");
}

#[test]
fn revalidate_objects_reads_the_object_again_instead_of_the_events_payload() {
    let fake = fake();
    let customer = fake.objects(Scope::test(None), "customers").unwrap()[0].clone();
    let id = customer["id"].as_str().unwrap().to_owned();
    let mut payload = customer.clone();
    payload["name"] = json!("only in the event");
    // Later than the run's start, so its payload would be taken as it is.
    let event = json!({"id": "evt_reval", "object": "event", "type": "customer.updated",
        "created": fake.now() + 60, "livemode": false, "data": {"object": payload}});
    let input = format!(
        "{}\n",
        json!({"type": "source_input", "source_input": event})
    );
    let push = |config: Value| {
        let out = Bin::new("source-stripe")
            .arg("read")
            .json("config", &config)
            .args(["--catalog", CUSTOMERS, "--input", "-"])
            .stdin(input.clone())
            .run();
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        customers(&out)
            .remove(&id)
            .expect("the customer is emitted")
    };
    assert_eq!(
        push(source_config(&fake, json!({})))["name"],
        "only in the event"
    );
    // The reference's spelling (an object type) and ours (a stream) alike.
    for names in [json!(["customer"]), json!(["customers"])] {
        let record = push(source_config(&fake, json!({"revalidate_objects": names})));
        assert_eq!(record["name"], customer["name"], "read again: {record}");
    }
}

#[test]
fn a_webhook_port_without_its_secret_is_named() {
    let fake = fake();
    let config = source_config(&fake, json!({"webhook_port": free_port()}));
    let out = run("read", &config, &["--catalog", CUSTOMERS]);
    assert_ne!(out.code, Some(0));
    let messages = lines_of(&out.stdout);
    let failure = messages
        .iter()
        .find(|m| m["type"] == "connection_status")
        .unwrap_or_else(|| panic!("{} {}", out.stdout, out.stderr));
    let message = failure["connection_status"]["message"].as_str().unwrap();
    assert!(
        message.contains("webhook_port needs webhook_secret"),
        "{message}"
    );
}

/// The reference's connector pipe, as its CONNECTORS.md writes it: `source-stripe read` piped
/// into `dest-postgres write`, the destination given `connection_string` (the reference's name
/// for `url`); the rows equal those of our own spelling.
#[test]
fn the_reference_pipe_with_connection_string_loads_what_url_loads() {
    let fake = fake();
    let db = test_support::TestDb::new();
    let source = json!({"api_key": "sk_test_fake", "base_url": fake.base_url()});
    let rows = |key: &str, schema: &str| {
        let destination = json!({key: db.url(), "schema": schema});
        let script = format!(
            "'{source_bin}' read --config '{source}' --catalog '{CUSTOMERS}' \
             | '{dest_bin}' write --config '{destination}' --catalog '{CUSTOMERS}'",
            source_bin = bin_path("source-stripe").display(),
            dest_bin = bin_path("dest-postgres").display(),
        );
        let out = test_support::succeed(
            Command::new("bash")
                .args(["-o", "pipefail", "-c", &script])
                .env_remove("DATABASE_URL"),
        );
        let acks = lines_of(&String::from_utf8_lossy(&out.stdout))
            .into_iter()
            .filter(|m| m["type"] == "source_state")
            .count();
        assert!(acks > 0, "the destination acknowledges the source's states");
        db.client()
            .query(
                // When each row was written differs by the second the run took.
                &format!(
                    "SELECT id, (_raw_data - '_updated_at')::text FROM {schema}.customers ORDER BY id"
                ),
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
            .collect::<Vec<_>>()
    };
    let ours = rows("url", "ours");
    let theirs = rows("connection_string", "theirs");
    assert_eq!(ours.len(), customer_count(&fake));
    assert_eq!(theirs, ours);
}
