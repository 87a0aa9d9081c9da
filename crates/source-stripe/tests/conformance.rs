//! source-stripe against the project's Stripe simulator, through the real binary: what it reads
//! must equal the simulator's data exactly, from scratch, resumed from any state, incrementally,
//! and through faults.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use stripe_fake::{Config, FakeStripe, Faults, Scope};
use sync_protocol::{SourceState, SourceStateSet};
use test_support::{Bin, Finished};

fn fake(config: Config) -> FakeStripe {
    FakeStripe::start(config).expect("the simulator starts")
}

/// A source config for the simulator; rate limits well above what tests need.
fn source_config(fake: &FakeStripe, extra: Value) -> Value {
    let mut c = json!({"api_key": "sk_test_fake", "base_url": fake.base_url(), "rate_limit": 2000, "endpoint_rate_limit": 1000, "max_concurrency": 16});
    if let (Value::Object(c), Value::Object(e)) = (&mut c, extra) {
        c.extend(e);
    }
    c
}

fn discover(config: &Value) -> Value {
    let out = Bin::new("source-stripe")
        .arg("discover")
        .json("config", config)
        .run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    out.of_type("catalog").remove(0)
}

fn catalog(config: &Value, streams: &[&str]) -> Value {
    let mut c = discover(config);
    if !streams.is_empty() {
        let all = c["streams"].as_array().unwrap().clone();
        c["streams"] = Value::Array(
            streams
                .iter()
                .map(|s| {
                    all.iter()
                        .find(|x| x["name"] == *s)
                        .unwrap_or_else(|| panic!("no stream {s}"))
                        .clone()
                })
                .collect(),
        );
    }
    c
}

/// `read`, whatever its exit status.
fn try_read(config: &Value, catalog: &Value, state: Option<&SourceStateSet>) -> Finished {
    let mut bin = Bin::new("source-stripe")
        .arg("read")
        .json("config", config)
        .json_file("catalog", catalog);
    if let Some(state) = state {
        bin = bin.json_file("state", &serde_json::to_value(state).unwrap());
    }
    bin.run()
}

/// `read` that must succeed.
fn read(config: &Value, catalog: &Value, state: Option<&SourceStateSet>) -> Finished {
    let out = try_read(config, catalog, state);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    out
}

/// Records per stream, in emission order.
fn records(messages: &[Value]) -> BTreeMap<String, Vec<Value>> {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for m in messages.iter().filter(|m| m["type"] == "record") {
        out.entry(m["record"]["stream"].as_str().unwrap().to_owned())
            .or_default()
            .push(m["record"]["data"].clone());
    }
    out
}

/// The object a record carries, without the fields the source adds.
fn object(record: &Value) -> Value {
    let mut o = record.clone();
    if let Value::Object(m) = &mut o {
        m.remove("_account_id");
        m.remove("_updated_at");
    }
    o
}

fn ids(values: &[Value]) -> Vec<String> {
    values
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Every stream's records equal the simulator's objects: same ids, same objects, nothing twice.
fn assert_exact(
    fake: &FakeStripe,
    scope: Scope,
    got: &BTreeMap<String, Vec<Value>>,
    streams: &[String],
) {
    for stream in streams {
        // The events list keeps 30 days; `objects` would also give the older ones.
        let expected = if stream == "events" {
            fake.events(scope.clone()).unwrap()
        } else {
            fake.objects(scope.clone(), stream).unwrap()
        };
        let records = got.get(stream).cloned().unwrap_or_default();
        let got_ids = ids(&records);
        let unique: BTreeSet<&String> = got_ids.iter().collect();
        assert_eq!(
            unique.len(),
            got_ids.len(),
            "stream {stream}: {} duplicate records",
            got_ids.len() - unique.len()
        );
        let want: BTreeMap<String, Value> = expected
            .iter()
            .map(|o| (o["id"].as_str().unwrap().to_owned(), o.clone()))
            .collect();
        let have: BTreeMap<String, Value> = records
            .iter()
            .map(|r| (r["id"].as_str().unwrap().to_owned(), object(r)))
            .collect();
        let missing: Vec<&String> = want
            .keys()
            .filter(|k| !have.contains_key(*k))
            .take(5)
            .collect();
        let extra: Vec<&String> = have
            .keys()
            .filter(|k| !want.contains_key(*k))
            .take(5)
            .collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "stream {stream}: {} expected, {} read; missing {missing:?}, extra {extra:?}",
            want.len(),
            have.len()
        );
        for (id, o) in &want {
            assert_eq!(&have[id], o, "stream {stream}: object {id} differs");
        }
    }
}

fn stream_names(catalog: &Value) -> Vec<String> {
    catalog["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect()
}

fn statuses(out: &Finished) -> BTreeMap<String, String> {
    out.of_type("stream_status")
        .into_iter()
        .filter(|s| s["status"] != "range_complete" && s["status"] != "start")
        .map(|s| {
            (
                s["stream"].as_str().unwrap().to_owned(),
                s["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn final_state(messages: &[Value]) -> SourceStateSet {
    after(SourceStateSet::default(), messages)
}

/// A state with a run's states applied in order.
fn after(mut set: SourceStateSet, messages: &[Value]) -> SourceStateSet {
    for m in messages.iter().filter(|m| m["type"] == "source_state") {
        let state: SourceState = serde_json::from_value(m["source_state"].clone()).unwrap();
        set.apply(&state);
    }
    set
}

#[test]
fn a_full_backfill_of_every_stream_equals_the_data_set() {
    let fake = fake(Config {
        seed: 11,
        scale: 0.3,
        ..Default::default()
    });
    let config = source_config(&fake, json!({}));
    let catalog = catalog(&config, &[]);
    let streams = stream_names(&catalog);
    assert!(streams.len() >= 59, "{} streams", streams.len());
    let out = read(&config, &catalog, None);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let messages = out.messages();
    let status = statuses(&out);
    for s in &streams {
        assert_eq!(
            status.get(s).map(String::as_str),
            Some("complete"),
            "stream {s}: {status:?}"
        );
    }
    assert_exact(&fake, Scope::test(None), &records(&messages), &streams);
    // Every record carries the account and a version stamp.
    let account = fake.platform_account().to_owned();
    for m in messages.iter().filter(|m| m["type"] == "record") {
        assert_eq!(m["record"]["data"]["_account_id"], account.as_str());
        assert!(m["record"]["data"]["_updated_at"].is_i64());
        assert!(m["record"]["emitted_at"].is_string());
    }
}

#[test]
fn resuming_from_any_state_a_run_printed_still_yields_the_whole_data_set() {
    let fake = fake(Config {
        seed: 5,
        scale: 0.0,
        objects: vec![
            ("customers".into(), 2500),
            ("invoices".into(), 300),
            ("subscriptions".into(), 200),
            ("billing_meters".into(), 250),
            ("v2_core_accounts".into(), 45),
        ],
        ..Default::default()
    });
    let config = source_config(&fake, json!({"events": false}));
    let streams = [
        "customers",
        "invoices",
        "invoice_line_items",
        "subscriptions",
        "subscription_items",
        "billing_meters",
        "v2_core_accounts",
    ];
    let catalog = catalog(&config, &streams);
    let first = read(&config, &catalog, None);
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    let messages = first.messages();
    let state_positions: Vec<usize> = messages
        .iter()
        .enumerate()
        .filter(|(_, m)| m["type"] == "source_state")
        .map(|(i, _)| i)
        .collect();
    assert!(
        state_positions.len() > 20,
        "{} states",
        state_positions.len()
    );
    let names: Vec<String> = streams.iter().map(|s| s.to_string()).collect();
    // A deterministic spread of cut points: early, middle, late, and the very last state.
    let picks = [
        1,
        state_positions.len() / 7,
        state_positions.len() / 3,
        state_positions.len() / 2,
        state_positions.len() * 4 / 5,
        state_positions.len() - 1,
    ];
    for pick in picks {
        let cut = state_positions[pick];
        let before = &messages[..=cut];
        let state = final_state(before);
        let resumed = read(&config, &catalog, Some(&state));
        assert_eq!(resumed.code, Some(0), "{}", resumed.stderr);
        // The records before the cut plus the resumed run's cover the data set; a record may be
        // read twice only across the cut.
        let mut union = records(before);
        for (stream, mut rs) in records(&resumed.messages()) {
            let have: BTreeSet<String> = union
                .get(&stream)
                .map(|v| ids(v).into_iter().collect())
                .unwrap_or_default();
            rs.retain(|r| !have.contains(r["id"].as_str().unwrap()));
            union.entry(stream).or_default().extend(rs);
        }
        assert_exact(&fake, Scope::test(None), &union, &names);
    }
}

#[test]
fn same_second_clusters_and_range_boundaries_lose_nothing() {
    // Many objects share seconds; ranges split at those seconds.
    let fake = fake(Config {
        seed: 23,
        scale: 0.0,
        objects: vec![("charges".into(), 6000)],
        ..Default::default()
    });
    let config = source_config(&fake, json!({"events": false}));
    let catalog = catalog(&config, &["charges"]);
    let out = read(&config, &catalog, None);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let objects = fake.objects(Scope::test(None), "charges").unwrap();
    let mut per_second: BTreeMap<i64, usize> = BTreeMap::new();
    for o in &objects {
        *per_second
            .entry(o["created"].as_i64().unwrap())
            .or_default() += 1;
    }
    assert!(
        per_second.values().any(|n| *n > 100),
        "the data set has a cluster larger than a page"
    );
    assert!(
        out.of_type("stream_status")
            .iter()
            .filter(|s| s["status"] == "range_complete")
            .count()
            > 5,
        "the range was split"
    );
    assert_exact(
        &fake,
        Scope::test(None),
        &records(&out.messages()),
        &["charges".to_owned()],
    );
}

#[test]
fn creates_updates_and_deletes_after_a_backfill_arrive_in_the_next_incremental_run() {
    let fake = fake(Config {
        seed: 3,
        scale: 0.0,
        objects: vec![("customers".into(), 300), ("subscriptions".into(), 40)],
        ..Default::default()
    });
    let config = source_config(&fake, json!({}));
    let catalog = catalog(
        &config,
        &["customers", "subscriptions", "subscription_items"],
    );
    let first = read(&config, &catalog, None);
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    let state = final_state(&first.messages());

    let scope = Scope::test(None);
    let existing = fake.objects(scope.clone(), "customers").unwrap();
    let created = fake
        .create(
            scope.clone(),
            "customers",
            json!({"email": "new@example.com", "name": "Newcomer"}),
        )
        .unwrap();
    let updated = fake
        .update(
            scope.clone(),
            "customers",
            existing[5]["id"].as_str().unwrap(),
            json!({"email": "changed@example.com"}),
        )
        .unwrap();
    let deleted_id = existing[9]["id"].as_str().unwrap().to_owned();
    fake.delete(scope.clone(), "customers", &deleted_id)
        .unwrap();
    let sub = fake
        .objects(scope.clone(), "subscriptions")
        .unwrap()
        .into_iter()
        .find(|s| s["items"]["has_more"] == true)
        .expect("a subscription with more than 10 items");
    fake.update(
        scope.clone(),
        "subscriptions",
        sub["id"].as_str().unwrap(),
        json!({"metadata": {"touched": "yes"}}),
    )
    .unwrap();

    let second = read(&config, &catalog, Some(&state));
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    let got = records(&second.messages());
    let customers = got.get("customers").cloned().unwrap_or_default();
    assert!(
        customers.len() < 20,
        "an incremental run, not a backfill: {} records",
        customers.len()
    );
    let by_id = |id: &str| customers.iter().rfind(|r| r["id"] == id).cloned();
    assert_eq!(
        object(&by_id(created["id"].as_str().unwrap()).expect("the new customer")),
        created
    );
    assert_eq!(
        by_id(updated["id"].as_str().unwrap()).expect("the updated customer")["email"],
        "changed@example.com"
    );
    let tombstone = by_id(&deleted_id).expect("a tombstone for the deleted customer");
    assert_eq!(tombstone["deleted"], true);
    // The deletion came after the first read, so its stamp is not older than anything that
    // read saw (a second of slack: the server's clock is known to the second).
    let stamp = tombstone["_updated_at"].as_i64().unwrap();
    let first_newest = first
        .messages()
        .iter()
        .filter_map(|m| m["record"]["data"]["_updated_at"].as_i64())
        .max()
        .unwrap();
    assert!(stamp >= first_newest - 1, "{stamp} < {first_newest}");
    // The subscription's items were refetched in full (its payload holds only 10).
    let items: Vec<&Value> = got
        .get("subscription_items")
        .map(|v| {
            v.iter()
                .filter(|i| i["subscription"] == sub["id"])
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        items.len() as u64,
        sub["items"]["total_count"].as_u64().unwrap()
    );
    // Nothing is applied twice when the same state is used again and nothing changed since.
    let third = read(&config, &catalog, Some(&after(state, &second.messages())));
    assert!(
        records(&third.messages())
            .get("customers")
            .is_none_or(|v| v.is_empty()),
        "{:?}",
        records(&third.messages()).get("customers")
    );
}

#[test]
fn a_cursor_older_than_thirty_days_backfills_again_with_a_warning() {
    let fake = fake(Config {
        seed: 8,
        scale: 0.0,
        objects: vec![("products".into(), 150)],
        ..Default::default()
    });
    let config = source_config(&fake, json!({}));
    let catalog = catalog(&config, &["products"]);
    let first = read(&config, &catalog, None);
    let mut state = final_state(&first.messages());
    let now = fake.now();
    state.global = json!({"v": 1, "events_cursor": {"created": now - 31 * 24 * 3600, "seen": []}});
    let second = read(&config, &catalog, Some(&state));
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    let warnings: Vec<Value> = second
        .of_type("log")
        .into_iter()
        .filter(|l| l["level"] == "warn")
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w["message"].as_str().unwrap().contains("30-day")),
        "{warnings:?}"
    );
    assert_exact(
        &fake,
        Scope::test(None),
        &records(&second.messages()),
        &["products".to_owned()],
    );
}

#[test]
fn faults_do_not_change_the_result() {
    // The mix: 20% 429s, 5% 500s, 2% dropped connections; plus corrupt bodies.
    let fake = fake(Config {
        seed: 9,
        scale: 0.0,
        objects: vec![("customers".into(), 20_000), ("invoices".into(), 300)],
        faults: Faults {
            throttle_rate: 0.2,
            error_rate: 0.05,
            drop_rate: 0.02,
            corrupt_rate: 0.02,
            ..Default::default()
        },
        ..Default::default()
    });
    let config = source_config(&fake, json!({"events": false, "max_retries": 30}));
    let catalog = catalog(&config, &["customers", "invoices", "invoice_line_items"]);
    fake.reset_stats();
    let out = read(&config, &catalog, None);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let stats = fake.stats();
    let share = |n: u64| n as f64 / stats.total as f64;
    assert!(stats.total > 300, "{stats:?}");
    assert!(
        share(stats.throttled) > 0.12
            && share(stats.server_errors) > 0.02
            && stats.dropped_connections > 0,
        "the faults happened: {stats:?}"
    );
    assert_exact(
        &fake,
        Scope::test(None),
        &records(&out.messages()),
        &[
            "customers".into(),
            "invoices".into(),
            "invoice_line_items".into(),
        ],
    );
}

#[test]
fn a_bad_key_exits_1_with_a_config_error() {
    let fake = fake(Config {
        scale: 0.0,
        objects: vec![("customers".into(), 5)],
        ..Default::default()
    });
    let good = source_config(&fake, json!({}));
    let catalog = catalog(&good, &["customers"]);
    let bad = source_config(&fake, json!({"api_key": "sk_test_wrong_key_123"}));
    let out = try_read(&bad, &catalog, None);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let status = &out.of_type("connection_status")[0];
    assert_eq!(
        (status["status"].as_str(), status["failure_type"].as_str()),
        (Some("failed"), Some("config_error"))
    );
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("Invalid API Key"),
        "{status}"
    );
    assert!(
        !out.stdout.contains("sk_test_wrong_key_123")
            && !out.stderr.contains("sk_test_wrong_key_123")
    );
    let check = Bin::new("source-stripe")
        .arg("check")
        .json("config", &bad)
        .run();
    assert_eq!(check.code, Some(0));
    assert_eq!(check.of_type("connection_status")[0]["status"], "failed");
}

#[test]
fn a_stream_the_account_cannot_use_is_skipped_with_the_reason() {
    let fake = fake(Config {
        scale: 0.0,
        objects: vec![("customers".into(), 20), ("issuing_cards".into(), 5)],
        faults: Faults {
            disabled_streams: vec!["issuing_cards".into()],
            ..Default::default()
        },
        ..Default::default()
    });
    let config = source_config(&fake, json!({}));
    let catalog = catalog(&config, &["customers", "issuing_cards"]);
    let out = read(&config, &catalog, None);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let skip = out
        .of_type("stream_status")
        .into_iter()
        .find(|s| s["status"] == "skip")
        .expect("a skip");
    assert_eq!(skip["stream"], "issuing_cards");
    assert!(
        skip["reason"].as_str().unwrap().contains("Issuing"),
        "{skip}"
    );
    assert_eq!(statuses(&out)["customers"], "complete");
}

#[test]
fn a_connected_account_is_read_with_its_own_data() {
    let fake = fake(Config {
        seed: 2,
        scale: 0.0,
        objects: vec![("customers".into(), 40)],
        accounts: 2,
        ..Default::default()
    });
    let account = fake.connected_accounts()[1].clone();
    let config = source_config(&fake, json!({"account_id": account}));
    let catalog = catalog(&config, &["customers"]);
    assert_eq!(
        catalog["streams"][0]["json_schema"]["properties"]["_account_id"]["enum"][0],
        account.as_str()
    );
    let out = read(&config, &catalog, None);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let got = records(&out.messages());
    assert!(
        got["customers"]
            .iter()
            .all(|r| r["_account_id"] == account.as_str())
    );
    assert_exact(
        &fake,
        Scope::test(Some(&account)),
        &got,
        &["customers".into()],
    );
}

#[test]
fn a_state_read_from_another_account_is_never_resumed() {
    let fake = fake(Config {
        seed: 3,
        scale: 0.0,
        objects: vec![("customers".into(), 30)],
        accounts: 2,
        ..Default::default()
    });
    let accounts = fake.connected_accounts();
    let first = source_config(&fake, json!({"account_id": accounts[0]}));
    let catalog = catalog(&first, &["customers"]);
    let out = read(&first, &catalog, None);
    let state = final_state(&out.messages());
    // The same state with another account's key: everything is read again, and it says why.
    let second = source_config(&fake, json!({"account_id": accounts[1]}));
    let again = read(&second, &catalog, Some(&state));
    let warned = again.of_type("log").iter().any(|l| {
        l["message"]
            .as_str()
            .unwrap()
            .contains(accounts[0].as_str())
    });
    assert!(warned, "{}", again.stdout);
    assert_exact(
        &fake,
        Scope::test(Some(&accounts[1])),
        &records(&again.messages()),
        &["customers".into()],
    );
}

#[test]
fn backfill_limit_takes_a_sample_and_completes() {
    let fake = fake(Config {
        scale: 0.0,
        objects: vec![("customers".into(), 1000)],
        ..Default::default()
    });
    let config = source_config(&fake, json!({"backfill_limit": 150, "events": false}));
    let out = read(&config, &catalog(&config, &["customers"]), None);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let n = records(&out.messages())["customers"].len();
    // The backfill stops at the first page that reaches the limit: less than a page beyond it.
    assert!((150..250).contains(&n), "{n}");
    assert_eq!(statuses(&out)["customers"], "complete");
    assert_eq!(
        final_state(&out.messages()).streams["customers"]["phase"],
        "complete"
    );
}

#[test]
fn a_stream_left_out_of_a_run_is_backfilled_again_when_it_returns() {
    // Events are followed only for the streams of a run; one left out misses its updates.
    let fake = fake(Config {
        seed: 12,
        scale: 0.0,
        objects: vec![("customers".into(), 50), ("products".into(), 60)],
        ..Default::default()
    });
    let config = source_config(&fake, json!({}));
    let both = catalog(&config, &["customers", "products"]);
    let first = read(&config, &both, None);
    let state = final_state(&first.messages());
    let product = fake.objects(None, "products").unwrap()[10]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    fake.update(
        None,
        "products",
        &product,
        json!({"name": "Renamed while not selected"}),
    )
    .unwrap();
    let only_customers = read(&config, &catalog(&config, &["customers"]), Some(&state));
    assert_eq!(only_customers.code, Some(0), "{}", only_customers.stderr);
    let state = after(state, &only_customers.messages());
    let third = read(&config, &both, Some(&state));
    assert_eq!(third.code, Some(0), "{}", third.stderr);
    let warning = third
        .of_type("log")
        .into_iter()
        .find(|l| l["message"].as_str().unwrap().contains("backfilling again"))
        .expect("a warning");
    assert!(
        warning["message"].as_str().unwrap().contains("products"),
        "{warning}"
    );
    let got = records(&third.messages());
    assert!(
        got.get("customers").is_none_or(|c| c.len() < 5),
        "customers stayed incremental"
    );
    assert_exact(&fake, Scope::test(None), &got, &["products".into()]);
}

#[test]
fn a_restart_interrupted_right_after_its_new_cursor_still_backfills() {
    let fake = fake(Config {
        seed: 13,
        scale: 0.0,
        objects: vec![("products".into(), 80)],
        ..Default::default()
    });
    let config = source_config(&fake, json!({}));
    let catalog = catalog(&config, &["products"]);
    let first = read(&config, &catalog, None);
    let mut state = final_state(&first.messages());
    state.global["events_cursor"]["created"] = json!(fake.now() - 40 * 24 * 3600);
    let second = read(&config, &catalog, Some(&state));
    // A crash right after the new cursor was committed, before any page of the re-backfill.
    let messages = second.messages();
    let cut = messages
        .iter()
        .position(|m| m["type"] == "source_state")
        .expect("the new cursor comes first");
    let interrupted = after(state, &messages[..=cut]);
    let third = read(&config, &catalog, Some(&interrupted));
    assert_eq!(third.code, Some(0), "{}", third.stderr);
    assert_exact(
        &fake,
        Scope::test(None),
        &records(&third.messages()),
        &["products".into()],
    );
}
