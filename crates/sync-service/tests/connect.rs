//! A Connect platform's pipeline (`connected_accounts: "all"`) through the real service
//! (serve, worker, Temporal dev server, Postgres, the simulator): every account's rows equal its
//! data, `_accounts` lists them, an account connected later is read by the next step, and
//! webhooks from the platform's endpoint and its Connect endpoint are taken, each applied to the
//! account its event names.

mod common;

use std::time::Duration;

use common::{Service, WEBHOOK_SECRET, call, post_webhook};
use serde_json::json;

const SCHEMA: &str = "platform";
const CONNECT_SECRET: &str = "whsec_connect_endpoint";

fn rows_of(service: &Service, stream: &str, account: &str) -> Vec<String> {
    service
        .db
        .client()
        .query(
            &format!(
                "SELECT id FROM {SCHEMA}.{stream} WHERE _account_id = $1 AND NOT _deleted ORDER BY id"
            ),
            &[&account],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn active_accounts(service: &Service) -> Vec<String> {
    service
        .db
        .client()
        .query(
            &format!(
                "SELECT account_id FROM {SCHEMA}._accounts WHERE status = 'active' ORDER BY 1"
            ),
            &[],
        )
        .map(|rows| rows.iter().map(|r| r.get(0)).collect())
        .unwrap_or_default()
}

fn assert_every_account_exact(service: &Service, accounts: &[String]) {
    let platform = service.fake.platform_account().to_owned();
    for account in accounts {
        let scope = (*account != platform).then_some(account.as_str());
        for stream in ["customers", "products"] {
            assert_eq!(
                rows_of(service, stream, account),
                service.object_ids_in(stream, scope),
                "{account}'s {stream}"
            );
        }
    }
}

#[test]
fn a_platform_pipeline_reads_every_connected_account_and_a_newcomer_at_its_next_step() {
    let service = Service::start_full("5", 15, &[], &[], &[], 6);
    let platform = service.fake.platform_account().to_owned();
    let connected = service.fake.connected_accounts();
    let newcomer = connected[5].clone();
    service.fake.set_connected(&newcomer, false).unwrap();
    let mut body = service.pipeline_body("platform", SCHEMA);
    body["source"]["config"]["connected_accounts"] = json!("all");
    body["source"]["config"]["connect_webhook_secret"] = json!(CONNECT_SECRET);
    let (code, created) = call("POST", &service.url("/pipelines"), Some(&body));
    assert_eq!(code, 201, "{created}");
    service.wait_status("platform", "ready", Duration::from_secs(180));
    let mut expected: Vec<String> = std::iter::once(platform.clone())
        .chain(connected[..5].iter().cloned())
        .collect();
    expected.sort();
    assert_eq!(active_accounts(&service), expected);
    assert_every_account_exact(&service, &expected);
    // The pipeline shows each account's status.
    let shown = service.status("platform");
    let mut listed: Vec<(String, String, bool)> = shown["accounts"]
        .as_array()
        .unwrap_or_else(|| panic!("accounts: {shown}"))
        .iter()
        .map(|a| {
            (
                a["account_id"].as_str().unwrap().to_owned(),
                a["status"].as_str().unwrap().to_owned(),
                a["last_synced_at"].is_i64(),
            )
        })
        .collect();
    listed.sort();
    let want: Vec<(String, String, bool)> = expected
        .iter()
        .map(|a| (a.clone(), "active".to_owned(), true))
        .collect();
    assert_eq!(listed, want, "{shown}");
    // And so does its console page.
    let (code, page) = call("GET", &service.url("/console/pipelines/platform"), None);
    assert_eq!(code, 200, "{page}");
    let html = page.as_str().unwrap_or_default();
    let rows = html
        .split("id=\"account-rows\"")
        .nth(1)
        .and_then(|rest| rest.split("</tbody>").next())
        .unwrap_or_else(|| panic!("no accounts table: {html}"));
    assert!(rows.contains(&format!("{platform} (platform)")), "{rows}");
    for account in &expected {
        assert!(rows.contains(account.as_str()), "{account}: {rows}");
    }
    assert_eq!(
        rows.matches("<td>active</td>").count(),
        expected.len(),
        "{rows}"
    );

    // A connected account's change, delivered by the Connect endpoint (its own secret): kept,
    // and applied to that account; a wrong secret is refused.
    let account = connected[1].clone();
    let made = service
        .fake
        .create(
            stripe_fake::Scope::test(Some(&account)),
            "customers",
            json!({"email": "hook@connected.test"}),
        )
        .unwrap();
    let made_id = made["id"].as_str().unwrap().to_owned();
    let event = service
        .fake
        .events(stripe_fake::Scope::test(Some(&account)))
        .unwrap()
        .into_iter()
        .find(|e| e["data"]["object"]["id"] == made_id.as_str())
        .expect("the simulator recorded the creation");
    assert_eq!(event["account"], account.as_str());
    let (code, answer) = post_webhook(&service.base, "platform", &event, "whsec_wrong");
    assert_eq!(code, 401, "{answer}");
    let (code, answer) = post_webhook(&service.base, "platform", &event, CONNECT_SECRET);
    assert_eq!(code, 200, "{answer}");
    let platform_event = service.fake.events(stripe_fake::Scope::test(None)).unwrap()[0].clone();
    let (code, answer) = post_webhook(&service.base, "platform", &platform_event, WEBHOOK_SECRET);
    assert_eq!(code, 200, "{answer}");
    let event_ids = vec![
        event["id"].as_str().unwrap().to_owned(),
        platform_event["id"].as_str().unwrap().to_owned(),
    ];
    service.wait(
        "the webhooks to be applied, the customer under its own account",
        Duration::from_secs(120),
        || {
            let waiting: i64 = service
                .db
                .client()
                .query_one(
                    "SELECT count(*) FROM sync_service.webhook_inbox \
                     WHERE event_id = ANY($1) AND applied_at IS NULL",
                    &[&event_ids],
                )
                .unwrap()
                .get(0);
            waiting == 0 && rows_of(&service, "customers", &account).contains(&made_id)
        },
    );

    service.fake.set_connected(&newcomer, true).unwrap();
    let (code, _) = call(
        "PATCH",
        &service.url("/pipelines/platform"),
        Some(&json!({"status": "active"})),
    );
    assert_eq!(code, 200);
    service.wait(
        "the newly connected account to be read",
        Duration::from_secs(120),
        || {
            active_accounts(&service).contains(&newcomer)
                && rows_of(&service, "customers", &newcomer)
                    == service.object_ids_in("customers", Some(&newcomer))
        },
    );
    assert_every_account_exact(&service, &connected);
}
