//! Mutations and the events they leave; the events API's filters and retention.

mod common;

use common::{Client, NOW, created, ids, small, start};
use serde_json::{Value, json};

const DAY: i64 = 86_400;

#[test]
fn create_update_delete_over_http_emit_events() {
    let fake = start(small(&[
        ("customers", 20),
        ("prices", 5),
        ("subscriptions", 3),
    ]));
    let client = Client::new(&fake);

    let created_customer = client
        .post("/v1/customers", "name=Ada%20Lovelace&email=ada%40example.com&metadata[plan]=pro&address[city]=London&balance=250")
        .expect(200);
    let id = created_customer["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("cus_") && id.len() == 18, "{id}");
    assert_eq!(created_customer["name"], "Ada Lovelace");
    assert_eq!(created_customer["metadata"], json!({"plan": "pro"}));
    assert_eq!(created_customer["address"]["city"], "London");
    assert_eq!(created_customer["balance"], 250, "integers are coerced");
    assert_eq!(created_customer["livemode"], false);
    let now = created(&created_customer);
    assert!(
        (NOW..NOW + 60).contains(&now),
        "created at the simulated now"
    );
    assert_eq!(
        client.get(&format!("/v1/customers/{id}")).expect(200),
        created_customer
    );
    assert_eq!(
        client.get("/v1/customers?limit=1").expect(200)["data"][0]["id"],
        id.as_str(),
        "the newest"
    );

    let updated = client
        .post(
            &format!("/v1/customers/{id}"),
            "name=Ada%20King&metadata[plan]=&metadata[team]=math",
        )
        .expect(200);
    assert_eq!(updated["name"], "Ada King");
    assert_eq!(
        updated["metadata"],
        json!({"team": "math"}),
        "an empty value removes a metadata key"
    );
    assert_eq!(updated["address"]["city"], "London");

    assert_eq!(
        client.delete(&format!("/v1/customers/{id}")).expect(200)["deleted"],
        true
    );

    let events = client.get("/v1/events?type=customer.*&limit=3").expect(200);
    let types: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["customer.deleted", "customer.updated", "customer.created"]
    );
    let [deleted, update, creation] = [0, 1, 2].map(|i| events["data"][i].clone());
    assert_eq!(creation["data"]["object"], created_customer);
    assert_eq!(update["data"]["object"], updated);
    assert_eq!(
        update["data"]["previous_attributes"],
        json!({"name": "Ada Lovelace", "metadata": {"plan": "pro", "team": null}})
    );
    assert_eq!(
        deleted["data"]["object"], updated,
        "the deleted object as it was"
    );
    for e in [&deleted, &update, &creation] {
        assert_eq!(e["object"], "event");
        assert!(e["id"].as_str().unwrap().starts_with("evt_"));
        assert_eq!(e["api_version"], fake.api_version());
        assert_eq!(e["pending_webhooks"], 0);
        assert_eq!(e["livemode"], false);
        assert!(
            e["request"]["id"].as_str().unwrap().starts_with("req_"),
            "API-made events name their request"
        );
        assert!(
            e.get("account").is_none(),
            "platform events carry no account"
        );
        assert_eq!(
            client
                .get(&format!("/v1/events/{}", e["id"].as_str().unwrap()))
                .expect(200),
            *e
        );
    }

    // A subscription with its items given as a form list.
    let price = fake.objects(None, "prices").unwrap()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let sub = client
        .post("/v1/subscriptions", &format!("customer=cus_x&items[0][price]={price}&items[0][quantity]=3&items[1][price]={price}"))
        .expect(200);
    let sub_id = sub["id"].as_str().unwrap();
    assert_eq!(sub["items"]["total_count"], 2);
    let items = client.page_forward("/v1/subscription_items", &format!("subscription={sub_id}"));
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["quantity"], 3);
    assert_eq!(items[0]["price"]["id"], price.as_str());
    assert_eq!(items[0]["subscription"], sub_id);
    let latest = client.get("/v1/events?limit=1").expect(200);
    assert_eq!(latest["data"][0]["type"], "customer.subscription.created");

    let e = client
        .post("/v1/subscriptions", "items[0][price]=price_nope")
        .expect(400)["error"]
        .clone();
    assert_eq!(e["message"], "No such price: 'price_nope'");
    assert_eq!(
        client.post("/v1/customers", "balance=lots").expect(400)["error"]["param"],
        "balance"
    );
    assert_eq!(client.post("/v1/customers/cus_nope", "name=x").status, 404);
    assert_eq!(
        client.post("/v1/customers", &format!("id={id}")).status,
        400,
        "ids are unique even after deletion"
    );
    assert_eq!(client.post("/v1/customers", "created=5").status, 400);
}

#[test]
fn library_mutations_match_the_api_and_name_events_from_the_catalog() {
    let fake = start(small(&[("charges", 5)]));
    let charge = fake
        .create(None, "charges", json!({"amount": 1234, "currency": "eur"}))
        .unwrap();
    let id = charge["id"].as_str().unwrap();
    assert_eq!(fake.retrieve(None, "charges", id).unwrap(), charge);
    let updated = fake
        .update(
            None,
            "charges",
            id,
            json!({"description": "refund requested"}),
        )
        .unwrap();
    assert_eq!(updated["amount"], 1234);
    assert!(
        fake.delete(None, "charges", id).is_err(),
        "charges are not deletable"
    );
    assert!(fake.update(None, "charges", "ch_nope", json!({})).is_err());
    assert!(fake.create(None, "nope", json!({})).is_err());
    assert!(fake.create(None, "invoice_line_items", json!({})).is_err());
    let types: Vec<String> = fake
        .events(None)
        .unwrap()
        .iter()
        .take(2)
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    // Charges have no `.created` event: Stripe emits `charge.succeeded`.
    assert_eq!(types, ["charge.updated", "charge.succeeded"]);
    let unchanged = fake
        .update(None, "charges", id, json!({"amount": 1234}))
        .unwrap();
    assert_eq!(unchanged, updated);
    assert_eq!(fake.events(None).unwrap()[0]["type"], "charge.updated");
    assert_eq!(
        fake.events(None).unwrap().len(),
        Client::new(&fake)
            .page_forward("/v1/events", "limit=100")
            .len()
    );
}

#[test]
fn events_filter_by_type_and_created_and_keep_thirty_days() {
    let fake = start(small(&[
        ("customers", 3000),
        ("invoices", 600),
        ("charges", 600),
    ]));
    let client = Client::new(&fake);
    let stored = fake.objects(None, "events").unwrap();
    let now = fake.now();
    let oldest_listed = now - 30 * DAY;
    assert!(
        stored.iter().any(|e| created(e) < oldest_listed),
        "some history is older than 30 days"
    );
    let retained: Vec<Value> = stored
        .iter()
        .filter(|e| created(e) >= oldest_listed)
        .cloned()
        .collect();
    assert!(retained.len() > 100, "{} recent events", retained.len());

    let listed = client.page_forward("/v1/events", "limit=100");
    assert_eq!(listed, retained);
    assert_eq!(listed, fake.events(None).unwrap());
    let too_old = stored.iter().find(|e| created(e) < oldest_listed).unwrap();
    assert_eq!(
        client
            .get(&format!("/v1/events/{}", too_old["id"].as_str().unwrap()))
            .status,
        404
    );
    let kinds: std::collections::HashSet<&str> =
        listed.iter().map(|e| e["type"].as_str().unwrap()).collect();
    for expected in [
        "customer.created",
        "customer.updated",
        "invoice.created",
        "charge.succeeded",
    ] {
        assert!(kinds.contains(expected), "{expected} in {kinds:?}");
    }
    for e in &listed {
        let object = &e["data"]["object"];
        assert!(object["id"].is_string());
        if e["type"] == "customer.updated" {
            assert!(e["data"]["previous_attributes"]["metadata"].is_object());
        }
    }

    let by = |q: &str| client.page_forward("/v1/events", &format!("limit=100&{q}"));
    let of_type = |f: &dyn Fn(&str) -> bool| -> Vec<Value> {
        retained
            .iter()
            .filter(|e| f(e["type"].as_str().unwrap()))
            .cloned()
            .collect()
    };
    assert_eq!(
        by("type=customer.created"),
        of_type(&|t| t == "customer.created")
    );
    assert_eq!(
        by("type=invoice.*"),
        of_type(&|t| t.starts_with("invoice."))
    );
    assert_eq!(
        by("types[]=customer.updated&types[]=charge.succeeded"),
        of_type(&|t| t == "customer.updated" || t == "charge.succeeded")
    );
    assert_eq!(
        by("types[0]=invoice.created&types[1]=customer.*"),
        of_type(&|t| t == "invoice.created" || t.starts_with("customer."))
    );
    let middle = created(&retained[retained.len() / 2]);
    let window: Vec<Value> = retained
        .iter()
        .filter(|e| created(e) > middle - DAY && created(e) <= middle)
        .cloned()
        .collect();
    assert_eq!(
        ids(&by(&format!(
            "created[gt]={}&created[lte]={middle}",
            middle - DAY
        ))),
        ids(&window)
    );
    assert!(
        by(&format!("created[lt]={oldest_listed}")).is_empty(),
        "a filter cannot reach past 30 days"
    );
    assert_eq!(client.get("/v1/events?type=a&types[]=b").status, 400);
}

#[test]
fn connected_account_events_carry_the_account() {
    let fake = start(stripe_fake::Config {
        accounts: 2,
        ..small(&[("products", 5)])
    });
    let account = fake.connected_accounts()[1].clone();
    fake.create(account.as_str(), "products", json!({"name": "Widget"}))
        .unwrap();
    let client = Client::new(&fake).account(Some(&account));
    let event = client.get("/v1/events?limit=1").expect(200)["data"][0].clone();
    assert_eq!(event["type"], "product.created");
    assert_eq!(event["account"], account.as_str());
    assert_eq!(event["data"]["object"]["name"], "Widget");
    assert_ne!(
        Client::new(&fake).get("/v1/events?limit=1").expect(200)["data"][0]["id"],
        event["id"],
        "the platform does not see it"
    );
}
