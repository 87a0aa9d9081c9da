//! The simulator answers the way api.stripe.com does: pretty-printed JSON (two-space indent,
//! trailing newline) on every answer, errors included; `Date` from its clock; an account can
//! retrieve itself and name itself in `Stripe-Account`.

mod common;

use common::{Client, Response, small, start};
use serde_json::json;
use stripe_fake::{Config, Faults};

/// Stripe's layout: the body is the pretty form of its own value, byte for byte.
fn assert_stripe_layout(response: &Response, what: &str) {
    let text = std::str::from_utf8(&response.body).unwrap();
    let value: serde_json::Value = serde_json::from_str(text).unwrap();
    assert!(
        text.ends_with("}\n"),
        "{what}: no trailing newline: {text:?}"
    );
    assert!(
        text.starts_with("{\n  \""),
        "{what}: not indented: {text:?}"
    );
    // serde's pretty layout is Stripe's (two spaces, `"k": v`, `{}`/`[]` when empty); key
    // order aside, the texts agree line for line in number and indentation.
    let serde = serde_json::to_string_pretty(&value).unwrap();
    assert_eq!(text.lines().count(), serde.lines().count(), "{what}");
}

#[test]
fn every_answer_is_pretty_printed_errors_included() {
    let fake = start(small(&[("customers", 30), ("subscriptions", 5)]));
    let client = Client::new(&fake);
    let list = client.get("/v1/customers?limit=3");
    assert_eq!(list.status, 200);
    assert_stripe_layout(&list, "list");
    let id = list.json()["data"][0]["id"].as_str().unwrap().to_string();
    assert_stripe_layout(&client.get(&format!("/v1/customers/{id}")), "retrieve");
    assert_stripe_layout(&client.get("/v1/events?limit=2"), "events");
    assert_stripe_layout(&client.get("/v1/account"), "account");
    let missing = client.get("/v1/customers/cus_nope");
    assert_eq!(missing.status, 404);
    assert_stripe_layout(&missing, "404");
    let unauthorized = Client::new(&fake)
        .key(Some("sk_test_wrong"))
        .get("/v1/customers");
    assert_eq!(unauthorized.status, 401);
    assert_stripe_layout(&unauthorized, "401");
    let bad = client.get("/v1/customers?limit=1000");
    assert_eq!(bad.status, 400);
    assert_stripe_layout(&bad, "400");
    fake.set_faults(Faults {
        throttle_rate: 1.0,
        ..Faults::default()
    })
    .unwrap();
    let limited = client.get("/v1/customers");
    assert_eq!(limited.status, 429);
    assert_stripe_layout(&limited, "429");
    fake.set_faults(Faults {
        error_rate: 1.0,
        ..Faults::default()
    })
    .unwrap();
    let failed = client.get("/v1/customers");
    assert_eq!(failed.status, 500);
    assert_stripe_layout(&failed, "500");
}

#[test]
fn compact_json_answers_one_line() {
    let fake = start(Config {
        compact_json: true,
        ..small(&[("customers", 3)])
    });
    let client = Client::new(&fake);
    for path in ["/v1/customers", "/v1/customers/cus_nope", "/v1/account"] {
        let body = client.get(path).body;
        assert!(!body.contains(&b'\n'), "{path}");
        serde_json::from_slice::<serde_json::Value>(&body).unwrap();
    }
}

#[test]
fn the_date_header_is_the_simulated_clock() {
    let fake = start(small(&[("customers", 1)]));
    let client = Client::new(&fake);
    let stopped = fake.stop_clock();
    let moved = fake.advance_clock(3600);
    assert_eq!(moved, stopped + 3600);
    let response = client.get("/v1/customers");
    let date = response.header("date").unwrap();
    let at = chrono::DateTime::parse_from_rfc2822(date)
        .unwrap()
        .timestamp();
    assert_eq!(at, moved, "{date}");
    let created = fake.create(None, "customers", json!({})).unwrap();
    assert_eq!(created["created"], moved);
}

#[test]
fn an_account_retrieves_itself_and_may_name_itself() {
    let fake = start(Config {
        accounts: 1,
        ..small(&[("customers", 4)])
    });
    let platform = fake.platform_account().to_string();
    let client = Client::new(&fake);
    let me = client.get("/v1/account").expect(200);
    assert_eq!(me["id"], platform.as_str());
    let by_id = client.get(&format!("/v1/accounts/{platform}")).expect(200);
    assert_eq!(by_id, me);
    let as_platform = Client::new(&fake).account(Some(&platform));
    let direct = client.get("/v1/customers?limit=100").expect(200);
    let named = as_platform.get("/v1/customers?limit=100").expect(200);
    assert_eq!(named, direct);
    assert_eq!(as_platform.get("/v1/account").expect(200), me);
}
