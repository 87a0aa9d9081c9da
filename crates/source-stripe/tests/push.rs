//! Push mode (`read --input`) through the real binary against the simulator: events pushed to
//! the source become records of the source's own account, and only those.

use serde_json::{Value, json};
use stripe_fake::{Config, FakeStripe, Scope};
use test_support::Bin;

fn fake() -> FakeStripe {
    FakeStripe::start(Config {
        seed: 41,
        scale: 0.0,
        objects: vec![("customers".into(), 5)],
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

fn catalog(config: &Value) -> Value {
    let out = Bin::new("source-stripe")
        .arg("discover")
        .json("config", config)
        .run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let mut catalog = out.of_type("catalog").remove(0);
    let customers = catalog["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "customers")
        .unwrap()
        .clone();
    catalog["streams"] = json!([customers]);
    catalog
}

/// An event about a customer of `scope`, as Stripe renders it: `account` only for a connected
/// account's event.
fn event(fake: &FakeStripe, scope: Scope, id: &str) -> Value {
    let customer = fake.objects(scope.clone(), "customers").unwrap()[0].clone();
    let mut event = json!({
        "id": id, "object": "event", "type": "customer.updated", "created": fake.now(),
        "livemode": scope.mode == stripe_fake::Mode::Live, "data": {"object": customer},
    });
    if let Some(account) = &scope.account {
        event["account"] = json!(account);
    }
    event
}

/// `read --input` of these events; the ids of the customers it emitted, and its stderr.
fn push(config: &Value, events: &[Value]) -> (Vec<(String, String)>, String) {
    let input: String = events
        .iter()
        .map(|e| format!("{}\n", json!({"type": "source_input", "source_input": e})))
        .collect();
    let out = Bin::new("source-stripe")
        .arg("read")
        .json("config", config)
        .json_file("catalog", &catalog(config))
        .args(["--input", "-"])
        .stdin(input)
        .run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let emitted = out
        .of_type("record")
        .iter()
        .map(|r| {
            (
                r["data"]["id"].as_str().unwrap().to_owned(),
                r["data"]["_account_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (emitted, out.stderr)
}

#[test]
fn pushed_events_of_another_account_or_mode_are_refused_naming_them() {
    let fake = fake();
    let platform = fake.platform_account().to_owned();
    let connected = fake.connected_accounts()[0].clone();
    let ours = event(&fake, Scope::test(None), "evt_platform_own");
    let theirs = event(&fake, Scope::test(Some(&connected)), "evt_of_connected");
    let live = event(&fake, Scope::live(None), "evt_live_mode");

    // The platform's source takes its own event only.
    let config = source_config(&fake, json!({}));
    let (emitted, stderr) = push(&config, &[theirs.clone(), live, ours.clone()]);
    let own_customer = ours["data"]["object"]["id"].as_str().unwrap().to_owned();
    assert_eq!(emitted, vec![(own_customer, platform.clone())], "{stderr}");
    assert!(stderr.contains("refused=2"), "{stderr}");
    assert!(
        stderr.contains("evt_of_connected") && stderr.contains(&connected),
        "{stderr}"
    );
    assert!(
        stderr.contains("evt_live_mode") && stderr.contains("live-mode"),
        "{stderr}"
    );

    // A connected account's source takes its events, not the platform's own (no `account`).
    let config = source_config(&fake, json!({"account_id": connected}));
    let (emitted, stderr) = push(&config, &[ours, theirs.clone()]);
    let their_customer = theirs["data"]["object"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        emitted,
        vec![(their_customer, connected.clone())],
        "{stderr}"
    );
    assert!(stderr.contains("refused=1"), "{stderr}");
    assert!(stderr.contains("evt_platform_own"), "{stderr}");
}
