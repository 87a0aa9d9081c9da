//! Keys, modes, Connect accounts and determinism.

mod common;

use common::{Client, NOW, ids, small, start};
use stripe_fake::{Config, Scope};

#[test]
fn bad_or_missing_keys_get_401() {
    let fake = start(small(&[("customers", 5)]));
    let e = Client::new(&fake)
        .key(Some("sk_test_notarealkey9xyz"))
        .get("/v1/customers")
        .expect(401)["error"]
        .clone();
    assert_eq!(e["type"], "invalid_request_error");
    assert_eq!(
        e["message"],
        "Invalid API Key provided: sk_test_***********9xyz"
    );
    let e = Client::new(&fake)
        .key(None)
        .get("/v1/customers")
        .expect(401)["error"]
        .clone();
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("You did not provide an API key.")
    );
    // Basic auth with the key as the user, like `curl -u sk_test_fake:`.
    let basic = Client::new(&fake)
        .key(None)
        .header("authorization", "Basic c2tfdGVzdF9mYWtlOg==");
    basic.get("/v1/customers").expect(200);
    Client::new(&fake)
        .key(Some("rk_test_fake"))
        .get("/v1/customers")
        .expect(200);
    let r = Client::new(&fake)
        .header("stripe-version", "2024-06-20")
        .get("/v1/customers");
    assert_eq!(r.header("stripe-version"), Some("2024-06-20"));
    assert!(r.header("request-id").unwrap().starts_with("req_"));
}

#[test]
fn live_keys_see_live_data() {
    let fake = start(small(&[("customers", 25)]));
    let test = Client::new(&fake)
        .get("/v1/customers?limit=100")
        .expect(200);
    let live = Client::new(&fake)
        .key(Some("sk_live_fake"))
        .get("/v1/customers?limit=100")
        .expect(200);
    let live_restricted = Client::new(&fake)
        .key(Some("rk_live_fake"))
        .get("/v1/customers?limit=100")
        .expect(200);
    assert_eq!(live, live_restricted);
    assert!(
        test["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["livemode"] == false)
    );
    assert!(
        live["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["livemode"] == true)
    );
    let test_ids = ids(test["data"].as_array().unwrap())
        .into_iter()
        .collect::<Vec<_>>();
    assert!(
        ids(live["data"].as_array().unwrap())
            .iter()
            .all(|id| !test_ids.contains(id)),
        "separate data sets"
    );
    assert_eq!(
        fake.objects(Scope::live(None), "customers").unwrap(),
        live["data"].as_array().unwrap().clone()
    );
}

#[test]
fn stripe_account_selects_a_connected_data_set() {
    let fake = start(Config {
        accounts: 2,
        ..small(&[("customers", 15)])
    });
    let platform = fake.platform_account().to_string();
    let connected = fake.connected_accounts();
    assert_eq!(connected.len(), 2);
    assert!(
        platform.starts_with("acct_")
            && connected
                .iter()
                .all(|a| a.starts_with("acct_") && *a != platform)
    );

    let mut seen = Vec::new();
    for account in [
        None,
        Some(connected[0].as_str()),
        Some(connected[1].as_str()),
    ] {
        let client = Client::new(&fake).account(account);
        let me = client.get("/v1/account").expect(200);
        assert_eq!(me["object"], "account");
        assert_eq!(me["id"], account.unwrap_or(&platform));
        assert!(me["settings"].is_object() && me["created"].is_i64());
        let customers = client.get("/v1/customers?limit=100").expect(200)["data"].clone();
        assert_eq!(
            customers.as_array().unwrap(),
            &fake.objects(account, "customers").unwrap()
        );
        seen.push(customers);
    }
    assert_ne!(seen[0], seen[1]);
    assert_ne!(seen[1], seen[2]);
    // The platform's own id selects the platform.
    let own = Client::new(&fake)
        .account(Some(&platform))
        .get("/v1/customers?limit=100")
        .expect(200);
    assert_eq!(own["data"], seen[0]);
    // The platform lists its connected accounts.
    let accounts = Client::new(&fake).get("/v1/accounts").expect(200);
    let mut listed: Vec<&str> = ids(accounts["data"].as_array().unwrap());
    listed.sort();
    let mut expected: Vec<&str> = connected.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(listed, expected);
    let e = Client::new(&fake)
        .account(Some("acct_unknown"))
        .get("/v1/customers")
        .expect(403)["error"]
        .clone();
    assert_eq!(e["code"], "account_invalid");
    assert!(fake.objects("acct_unknown", "customers").is_err());
}

#[test]
fn the_same_seed_gives_the_same_data() {
    let config = || Config {
        seed: 42,
        scale: 0.02,
        accounts: 1,
        now: Some(NOW),
        ..Config::default()
    };
    let a = stripe_fake::Simulator::new(config()).unwrap();
    let b = stripe_fake::Simulator::new(config()).unwrap();
    let c = stripe_fake::Simulator::new(Config {
        seed: 43,
        ..config()
    })
    .unwrap();
    assert_eq!(a.platform_account(), b.platform_account());
    assert_ne!(a.platform_account(), c.platform_account());
    for stream in [
        "customers",
        "invoices",
        "invoice_line_items",
        "subscriptions",
        "events",
        "v2_core_accounts",
    ] {
        assert_eq!(
            a.objects(None, stream).unwrap(),
            b.objects(None, stream).unwrap(),
            "{stream}"
        );
        assert_ne!(
            a.objects(None, stream).unwrap(),
            c.objects(None, stream).unwrap(),
            "{stream}"
        );
    }
    let account = a.connected_accounts()[0].clone();
    assert_eq!(
        a.objects(&account, "charges").unwrap(),
        b.objects(&account, "charges").unwrap()
    );
}

#[test]
fn a_connected_account_can_be_disconnected_and_connected_again() {
    let fake = start(Config {
        accounts: 2,
        ..small(&[("customers", 5)])
    });
    let connected = fake.connected_accounts();
    let gone = connected[0].as_str();
    let listed = |fake: &stripe_fake::FakeStripe| {
        let accounts = Client::new(fake).get("/v1/accounts").expect(200);
        let mut ids: Vec<String> = ids(accounts["data"].as_array().unwrap())
            .into_iter()
            .map(str::to_owned)
            .collect();
        ids.sort();
        ids
    };
    let platform_events = |fake: &stripe_fake::FakeStripe, kind: &str| -> Vec<serde_json::Value> {
        let events = Client::new(fake)
            .get(&format!("/v1/events?type={kind}"))
            .expect(200);
        events["data"].as_array().unwrap().clone()
    };
    let customers = fake.objects(Some(gone), "customers").unwrap();

    // Over HTTP, as a test of another process would.
    let answer = Client::new(&fake)
        .delete(&format!("/_fake/accounts/{gone}"))
        .expect(200);
    assert_eq!(answer["connected"], false);
    let e = Client::new(&fake)
        .account(Some(gone))
        .get("/v1/customers")
        .expect(403)["error"]
        .clone();
    assert_eq!(e["code"], "account_invalid");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("Application access may have been revoked")
    );
    assert_eq!(listed(&fake), vec![connected[1].clone()]);
    let revoked = platform_events(&fake, "account.application.deauthorized");
    assert_eq!(revoked.len(), 1, "{revoked:?}");
    assert_eq!(revoked[0]["account"], gone);
    assert_eq!(revoked[0]["data"]["object"]["object"], "application");
    let state = Client::new(&fake).get("/_fake/accounts").expect(200);
    assert_eq!(state["disconnected"], serde_json::json!([gone]));
    // Disconnecting again changes nothing and says nothing.
    fake.set_connected(gone, false).unwrap();
    assert_eq!(
        platform_events(&fake, "account.application.deauthorized").len(),
        1
    );

    let answer = Client::new(&fake)
        .post(&format!("/_fake/accounts/{gone}"), "")
        .expect(200);
    assert_eq!(answer["connected"], true);
    let back = Client::new(&fake)
        .account(Some(gone))
        .get("/v1/customers?limit=100")
        .expect(200);
    assert_eq!(
        back["data"].as_array().unwrap(),
        &customers,
        "its data was kept"
    );
    let mut all = connected.clone();
    all.sort();
    assert_eq!(listed(&fake), all);
    let authorized = platform_events(&fake, "account.application.authorized");
    assert_eq!(authorized.len(), 1, "{authorized:?}");
    assert_eq!(authorized[0]["account"], gone);

    // The platform is not a connected account; an unknown one is not found.
    let platform = fake.platform_account().to_owned();
    assert!(fake.set_connected(&platform, false).is_err());
    Client::new(&fake)
        .delete("/_fake/accounts/acct_unknown")
        .expect(404);
}

#[test]
fn thousands_of_connected_accounts_are_listed_and_served() {
    let fake = start(Config {
        accounts: 5_000,
        ..small(&[("customers", 2)])
    });
    let connected = fake.connected_accounts();
    assert_eq!(connected.len(), 5_000);
    // The platform lists them all, a page at a time.
    let mut listed = 0;
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(id) => format!("/v1/accounts?limit=100&starting_after={id}"),
            None => "/v1/accounts?limit=100".to_owned(),
        };
        let page = Client::new(&fake).get(&path).expect(200);
        let data = page["data"].as_array().unwrap();
        listed += data.len();
        if page["has_more"] != true {
            break;
        }
        after = data
            .last()
            .and_then(|a| a["id"].as_str())
            .map(str::to_owned);
    }
    assert_eq!(listed, 5_000);
    // Any one of them answers with its own data when first asked.
    let last = connected.last().unwrap();
    let customers = Client::new(&fake)
        .account(Some(last))
        .get("/v1/customers?limit=100")
        .expect(200);
    assert_eq!(customers["data"].as_array().unwrap().len(), 2);
    assert!(
        stripe_fake::FakeStripe::start(Config {
            accounts: stripe_fake::MAX_ACCOUNTS + 1,
            ..small(&[("customers", 1)])
        })
        .is_err()
    );
}
