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

/// List pages are put together from each object's kept pretty form: read again, prerendered
/// from the start, or after a change, they are the bytes of the page laid out whole, and hold
/// what the compact answer holds.
#[test]
fn list_pages_are_the_same_bytes_read_again_prerendered_or_after_a_change() {
    let objects = [("customers", 250), ("invoices", 30)];
    let lazy = start(small(&objects));
    let prerendered = start(Config {
        prerender: true,
        ..small(&objects)
    });
    let compact = start(Config {
        compact_json: true,
        ..small(&objects)
    });
    // One simulated second on all three, so the update's event is the same everywhere.
    let fakes = [&lazy, &prerendered, &compact];
    let stopped: Vec<i64> = fakes.iter().map(|f| f.stop_clock()).collect();
    let latest = stopped.iter().copied().max().unwrap();
    for (fake, at) in fakes.iter().zip(&stopped) {
        fake.advance_clock(latest - at);
    }
    let (lazy, prerendered, compact) = (
        Client::new(&lazy),
        Client::new(&prerendered),
        Client::new(&compact),
    );
    let invoice = compact.get("/v1/invoices?limit=1").json()["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let paths = [
        "/v1/customers?limit=100".to_string(),
        "/v1/customers?limit=7&created[lte]=4102444800".to_string(),
        "/v1/invoices?limit=100".to_string(),
        format!("/v1/invoices/{invoice}/lines?limit=3"),
        "/v1/events?limit=5".to_string(),
        "/v1/customers?limit=3&created[gt]=4102444800".to_string(),
    ];
    let same_everywhere = |when: &str, paths: &[String]| {
        for path in paths {
            let first = lazy.get(path);
            assert_eq!(first.status, 200, "{when} {path}");
            assert_stripe_layout(&first, path);
            let again = lazy.get(path);
            let from_start = prerendered.get(path);
            assert!(first.body == again.body, "{when} {path}: read again");
            assert!(first.body == from_start.body, "{when} {path}: prerendered");
            assert_eq!(first.json(), compact.get(path).json(), "{when} {path}");
        }
    };
    same_everywhere("before", &paths);
    let newest = lazy.get("/v1/customers?limit=1").json()["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for client in [&lazy, &prerendered, &compact] {
        client
            .post(&format!("/v1/customers/{newest}"), "name=Renamed+Ada")
            .expect(200);
    }
    // Events aside: an update's event names its request, whose id differs between simulators.
    same_everywhere("after an update", &paths[..4]);
    assert_eq!(
        lazy.get("/v1/customers?limit=1").json()["data"][0]["name"],
        "Renamed Ada"
    );
}

#[test]
fn stats_stamp_the_first_request_and_the_first_list_on_arrival() {
    let fake = start(small(&[("customers", 3)]));
    let client = Client::new(&fake);
    fake.reset_stats();
    assert_eq!(fake.stats().first_request_ms, None);
    std::thread::sleep(std::time::Duration::from_millis(60));
    assert_eq!(client.get("/v1/account").status, 200);
    let id = client.get("/v1/customers?limit=1").json()["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let stats = fake.stats();
    let first = stats.first_request_ms.unwrap();
    let first_list = stats.first_list_ms.unwrap();
    assert!(first >= 60, "{stats:?}");
    assert!(first_list >= first, "{stats:?}");
    // An object's retrieve is not a list: after a reset, only the list stamps first_list_ms.
    fake.reset_stats();
    assert_eq!(client.get(&format!("/v1/customers/{id}")).status, 200);
    assert_eq!(fake.stats().first_list_ms, None);
    assert!(fake.stats().first_request_ms.is_some());
    assert_eq!(client.get("/v1/customers").status, 200);
    assert!(fake.stats().first_list_ms.is_some());
}
