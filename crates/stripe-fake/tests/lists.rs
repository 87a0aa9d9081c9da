//! List endpoints against an independent brute-force filter of the data set.

mod common;

use std::collections::BTreeMap;

use common::{Client, created, ids, small, start};
use serde_json::{Value, json};
use stripe_catalog::{Api, catalog};

/// What a `created` filter keeps, written independently of the simulator's range code.
fn matches(filter: &[(&str, i64)], t: i64) -> bool {
    filter.iter().all(|&(op, v)| match op {
        "gt" => t > v,
        "gte" => t >= v,
        "lt" => t < v,
        "lte" => t <= v,
        "eq" => t == v,
        _ => unreachable!(),
    })
}

fn query(filter: &[(&str, i64)], limit: usize) -> String {
    let mut q = format!("limit={limit}");
    for (op, v) in filter {
        if *op == "eq" {
            q.push_str(&format!("&created={v}"));
        } else {
            q.push_str(&format!("&created[{op}]={v}"));
        }
    }
    q
}

/// Pages backward from the oldest matching object with `ending_before`; the pages, stitched
/// newest first, must rebuild the list.
fn page_backward(client: &Client, path: &str, q: &str, oldest: &Value) -> Vec<Value> {
    let mut out = vec![oldest.clone()];
    loop {
        let cursor = out[0]["id"].as_str().unwrap().to_string();
        let page = client
            .get(&format!("{path}?{q}&ending_before={cursor}"))
            .expect(200);
        let data = page["data"].as_array().unwrap().clone();
        let more = page["has_more"].as_bool().unwrap();
        let newest_first: Vec<i64> = data.iter().map(created).collect();
        assert!(
            newest_first.windows(2).all(|w| w[0] >= w[1]),
            "a backward page is newest first"
        );
        let mut stitched = data;
        stitched.extend(out);
        out = stitched;
        if !more {
            return out;
        }
    }
}

#[test]
fn every_created_filter_limit_and_direction_returns_each_match_once_in_order() {
    let fake = start(small(&[("customers", 1000)]));
    let client = Client::new(&fake);
    let all = fake.objects(None, "customers").unwrap();
    assert!(all.len() > 900, "a few are deleted, not most");
    // Stripe's order is newest first, and objects() gives it; the timestamps must agree.
    assert!(all.windows(2).all(|w| created(&w[0]) >= created(&w[1])));

    let mut per_second: BTreeMap<i64, usize> = BTreeMap::new();
    for c in &all {
        *per_second.entry(created(c)).or_default() += 1;
    }
    let (&cluster, &size) = per_second.iter().max_by_key(|(_, n)| **n).unwrap();
    assert!(
        size > 100,
        "the largest same-second cluster ({size}) spans more than a page"
    );
    assert!(
        per_second.values().filter(|n| **n >= 2).count() >= 5,
        "several clusters"
    );
    let median = created(&all[all.len() / 2]);
    let newest = created(&all[0]);

    let filters: Vec<Vec<(&str, i64)>> = vec![
        vec![],
        vec![("gt", cluster)],
        vec![("gte", cluster)],
        vec![("lt", cluster)],
        vec![("lte", cluster)],
        vec![("eq", cluster)],
        vec![("gte", cluster), ("lt", median.max(cluster + 1))],
        vec![("gt", median.min(cluster - 1)), ("lte", cluster)],
        vec![("gte", median), ("lte", median)],
        vec![("gt", newest)],
        vec![("gte", newest)],
        vec![("lt", 0)],
    ];
    for filter in &filters {
        let expected: Vec<&Value> = all.iter().filter(|c| matches(filter, created(c))).collect();
        for limit in [1, 7, 100] {
            // Limit 1 over hundreds of objects is slow and adds nothing: keep it to small sets.
            if limit == 1 && expected.len() > 200 {
                continue;
            }
            let q = query(filter, limit);
            let forward = client.page_forward("/v1/customers", &q);
            assert_eq!(
                ids(&forward),
                expected
                    .iter()
                    .map(|c| c["id"].as_str().unwrap())
                    .collect::<Vec<_>>(),
                "forward {q}"
            );
            if let Some(oldest) = expected.last() {
                let backward = page_backward(&client, "/v1/customers", &q, oldest);
                assert_eq!(ids(&backward), ids(&forward), "backward {q}");
            }
        }
    }
}

#[test]
fn same_second_objects_list_in_reverse_creation_order() {
    let fake = start(small(&[("customers", 3)]));
    let t = common::NOW - 5000;
    let made: Vec<String> = (0..12)
        .map(|i| {
            let c = fake
                .create(
                    None,
                    "customers",
                    json!({"created": t, "name": format!("c{i}")}),
                )
                .unwrap();
            c["id"].as_str().unwrap().to_string()
        })
        .collect();
    let listed = Client::new(&fake).page_forward("/v1/customers", &format!("created={t}&limit=5"));
    let expected: Vec<&str> = made.iter().rev().map(String::as_str).collect();
    assert_eq!(ids(&listed), expected);
}

#[test]
fn bad_parameters_get_stripe_errors() {
    let fake = start(small(&[("customers", 30), ("billing_alerts", 3)]));
    let client = Client::new(&fake);
    let error = |path: &str, status: u16| client.get(path).expect(status)["error"].clone();

    let e = error("/v1/customers?starting_after=cus_nope", 400);
    assert_eq!(e["message"], "No such customer: 'cus_nope'");
    assert_eq!(e["param"], "starting_after");
    assert_eq!(e["type"], "invalid_request_error");
    assert_eq!(
        error("/v1/customers?ending_before=cus_nope", 400)["param"],
        "ending_before"
    );
    assert_eq!(
        error("/v1/customers?starting_after=a&ending_before=b", 400)["type"],
        "invalid_request_error"
    );
    for bad in ["0", "101", "ten", "-1"] {
        assert_eq!(
            error(&format!("/v1/customers?limit={bad}"), 400)["param"],
            "limit",
            "limit={bad}"
        );
    }
    assert_eq!(
        error("/v1/customers?created[gt]=soon", 400)["param"],
        "created[gt]"
    );
    assert_eq!(
        error("/v1/customers?created[since]=1", 400)["param"],
        "created[since]"
    );
    let e = error("/v1/billing/alerts?created[gte]=1", 400);
    assert_eq!(e["message"], "Received unknown parameter: created[gte]");
    let e = error("/v1/customers/cus_missing", 404);
    assert_eq!(e["message"], "No such customer: 'cus_missing'");
    assert_eq!(e["code"], "resource_missing");
    let e = error("/v1/nothing_here", 404);
    assert_eq!(
        e["message"].as_str().unwrap().split(". ").next().unwrap(),
        "Unrecognized request URL (GET: /v1/nothing_here)"
    );
    assert!(client.get("/v1/charges/ch_1/whatever").status == 404);
    assert!(
        client.delete("/v1/charges/ch_1").status == 404,
        "charges are not deletable"
    );
    let e = error("/v1/subscription_items", 400);
    assert_eq!(e["message"], "Missing required param: subscription.");

    let list = client.get("/v1/customers").expect(200);
    assert_eq!(list["object"], "list");
    assert_eq!(list["url"], "/v1/customers");
    assert_eq!(list["data"].as_array().unwrap().len(), 10, "default limit");
    assert_eq!(list["has_more"], true);
    let first = &list["data"][0];
    let one = client
        .get(&format!("/v1/customers/{}", first["id"].as_str().unwrap()))
        .expect(200);
    assert_eq!(&one, first);
}

#[test]
fn deleted_objects_are_gone_but_still_work_as_cursors() {
    let fake = start(small(&[("customers", 40), ("apps_installs", 3)]));
    let client = Client::new(&fake);
    let all = fake.objects(None, "customers").unwrap();
    let victim = all[5]["id"].as_str().unwrap().to_string();
    let gone = client
        .delete(&format!("/v1/customers/{victim}"))
        .expect(200);
    assert_eq!(
        gone,
        json!({"id": victim, "object": "customer", "deleted": true})
    );
    // Stripe keeps a stub of deleted customers (its spec has `deleted_customer`)...
    assert_eq!(
        client.get(&format!("/v1/customers/{victim}")).expect(200),
        json!({"id": victim, "object": "customer", "deleted": true})
    );
    // ...but not of types without such a schema.
    let install = fake.objects(None, "apps_installs").unwrap()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    client
        .delete(&format!("/v1/apps/installs/{install}"))
        .expect(200);
    assert_eq!(
        client.get(&format!("/v1/apps/installs/{install}")).status,
        404
    );
    assert_eq!(
        client.delete(&format!("/v1/customers/{victim}")).status,
        404
    );
    let listed = client.page_forward("/v1/customers", "limit=100");
    assert!(!ids(&listed).contains(&victim.as_str()));
    assert_eq!(listed.len(), all.len() - 1);
    let after = client
        .get(&format!("/v1/customers?limit=2&starting_after={victim}"))
        .expect(200);
    assert_eq!(after["data"][0]["id"], all[6]["id"]);
}

#[test]
fn nested_lists_page_fully_and_match_their_parents() {
    let fake = start(small(&[
        ("subscriptions", 60),
        ("invoices", 60),
        ("credit_notes", 40),
        ("checkout_sessions", 40),
        ("prices", 10),
    ]));
    let client = Client::new(&fake);
    for (parent_stream, child_stream) in [
        ("subscriptions", "subscription_items"),
        ("invoices", "invoice_line_items"),
        ("credit_notes", "credit_note_line_items"),
        ("checkout_sessions", "checkout_session_line_items"),
    ] {
        let child = catalog().resource(child_stream).unwrap();
        let field = child.parent.as_ref().unwrap().embedded_field.as_str();
        let parents = fake.objects(None, parent_stream).unwrap();
        let mut stitched = Vec::new();
        let mut saw_long = false;
        for parent in &parents {
            let id = parent["id"].as_str().unwrap();
            let items = match child.parent.as_ref().unwrap().param.as_deref() {
                Some(param) => {
                    client.page_forward(child.list_path.as_str(), &format!("{param}={id}&limit=7"))
                }
                None => client.page_forward(&child.list_path_for(Some(id)), "limit=7"),
            };
            assert!(!items.is_empty(), "{parent_stream} {id} has items");
            saw_long |= items.len() > 10;
            if parent_stream == "checkout_sessions" {
                assert!(
                    parent.get(field).is_none(),
                    "checkout sessions do not embed line items"
                );
            } else {
                let embedded = &parent[field];
                assert_eq!(embedded["object"], "list");
                assert_eq!(embedded["total_count"], items.len());
                assert_eq!(embedded["has_more"], items.len() > 10);
                assert_eq!(
                    embedded["data"].as_array().unwrap().as_slice(),
                    &items[..items.len().min(10)]
                );
                let url = embedded["url"].as_str().unwrap();
                assert!(url.contains(id), "{url}");
            }
            if child_stream == "subscription_items" {
                assert!(items.iter().all(|i| i["subscription"] == id));
            }
            if child_stream == "invoice_line_items" {
                assert!(items.iter().all(|i| i["invoice"] == id));
            }
            stitched.extend(items);
        }
        assert!(
            saw_long || parent_stream == "credit_notes",
            "{parent_stream}: some parent has more than 10 items"
        );
        assert_eq!(
            stitched,
            fake.objects(None, child_stream).unwrap(),
            "{child_stream} are exactly their parents' items"
        );
    }
    let invoice = fake.objects(None, "invoices").unwrap()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let e = client
        .get(&format!(
            "/v1/invoices/{invoice}/lines?starting_after=il_nope"
        ))
        .expect(400)["error"]
        .clone();
    assert_eq!(e["param"], "starting_after");
    assert_eq!(client.get("/v1/invoices/in_nope/lines").status, 404);
    assert_eq!(
        client
            .get("/v1/subscription_items?subscription=sub_nope")
            .status,
        400
    );
}

#[test]
fn every_catalog_stream_is_listable() {
    let fake = start(stripe_fake::Config {
        scale: 0.01,
        accounts: 1,
        ..small(&[])
    });
    let client = Client::new(&fake);
    for resource in &catalog().resources {
        let path = match (&resource.parent, resource.list_path.contains("{parent}")) {
            (Some(parent), true) => {
                let parent_id = fake.objects(None, &parent.stream).unwrap()[0]["id"]
                    .as_str()
                    .unwrap()
                    .to_string();
                resource.list_path_for(Some(&parent_id))
            }
            (Some(parent), false) => {
                let parent_id = fake.objects(None, &parent.stream).unwrap()[0]["id"]
                    .as_str()
                    .unwrap()
                    .to_string();
                format!(
                    "{}?{}={parent_id}",
                    resource.list_path,
                    parent.param.as_deref().unwrap()
                )
            }
            _ => resource.list_path.clone(),
        };
        let page = client.get(&path).expect(200);
        let data = page["data"]
            .as_array()
            .unwrap_or_else(|| panic!("{path}: {page}"));
        assert!(!data.is_empty(), "{} ({path}) has data", resource.stream);
        for object in data {
            assert!(object["id"].is_string(), "{}", resource.stream);
            if resource.stream != "events" {
                assert_eq!(
                    object["object"],
                    resource.object.as_str(),
                    "{}",
                    resource.stream
                );
            }
        }
        if resource.api == Api::V2 {
            assert!(
                matches!(
                    page.get("next_page_url"),
                    Some(Value::String(_) | Value::Null)
                ),
                "{path}: {page}"
            );
        } else {
            assert_eq!(page["object"], "list");
        }
        if let Some(retrieve) = &resource.retrieve_path
            && resource.api == Api::V1
        {
            let id = data[0]["id"].as_str().unwrap();
            let one = client.get(&retrieve.replace("{id}", id)).expect(200);
            assert_eq!(&one, &data[0], "{retrieve}");
        }
    }
}

#[test]
fn v2_lists_page_with_tokens() {
    let fake = start(small(&[("v2_core_accounts", 45)]));
    let client = Client::new(&fake);
    let all = fake.objects(None, "v2_core_accounts").unwrap();
    assert_eq!(all.len(), 45);
    assert!(
        all[0]["created"].as_str().unwrap().ends_with('Z'),
        "v2 timestamps are RFC 3339"
    );
    let mut seen = Vec::new();
    let mut url = "/v2/core/accounts?limit=20".to_string();
    let mut pages = Vec::new();
    loop {
        let page = client.get(&url).expect(200);
        seen.extend(page["data"].as_array().unwrap().iter().cloned());
        pages.push(page.clone());
        match page["next_page_url"].as_str() {
            Some(next) => url = next.to_string(),
            None => break,
        }
    }
    assert_eq!(seen, all);
    assert_eq!(pages.len(), 3);
    assert!(pages[0]["previous_page_url"].is_null());
    let back = client
        .get(pages[2]["previous_page_url"].as_str().unwrap())
        .expect(200);
    assert_eq!(back["data"], pages[1]["data"]);
    assert_eq!(client.get("/v2/core/accounts?limit=21").status, 400);
    assert_eq!(client.get("/v2/core/accounts?page=garbage").status, 400);
}

#[test]
fn invoice_items_are_dated_by_their_creation() {
    let fake = start(small(&[("invoiceitems", 300)]));
    let items = fake.objects(None, "invoiceitems").unwrap();
    let date = |i: &Value| i["date"].as_i64().unwrap();
    assert!(
        items.windows(2).all(|w| date(&w[0]) >= date(&w[1])),
        "newest first by date"
    );
    let middle = date(&items[items.len() / 2]);
    let listed = Client::new(&fake).page_forward(
        "/v1/invoiceitems",
        &format!("created[gte]={middle}&limit=100"),
    );
    let expected: Vec<&Value> = items.iter().filter(|i| date(i) >= middle).collect();
    assert_eq!(listed.len(), expected.len());
    assert!(listed.iter().zip(expected).all(|(a, b)| a == b));
}

#[test]
fn deleting_a_subscription_cancels_it_and_lists_hide_canceled_ones_by_default() {
    let fake = start(small(&[("subscriptions", 6)]));
    let client = Client::new(&fake);
    let all = fake.objects(None, "subscriptions").unwrap();
    let already: Vec<&str> = all
        .iter()
        .filter(|s| s["status"] == "canceled")
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    let victim = all.iter().find(|s| s["status"] != "canceled").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let canceled = client
        .delete(&format!("/v1/subscriptions/{victim}"))
        .expect(200);
    assert_eq!(canceled["object"], "subscription");
    assert_eq!(canceled["status"], "canceled");
    assert!(canceled.get("deleted").is_none(), "{canceled}");
    let listed = |query: &str| -> Vec<String> {
        client
            .page_forward("/v1/subscriptions", query)
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let default = listed("limit=100");
    assert!(!default.contains(&victim));
    assert!(already.iter().all(|id| !default.iter().any(|d| d == id)));
    let everything = listed("limit=100&status=all");
    assert_eq!(everything.len(), all.len());
    assert!(listed("limit=100&status=canceled").contains(&victim));
    assert_eq!(client.get("/v1/subscriptions?status=bogus").status, 400);
    let event = fake.events(None).unwrap().into_iter().last().unwrap();
    assert_eq!(event["type"], "customer.subscription.deleted");
    assert_eq!(event["data"]["object"]["status"], "canceled");
}
