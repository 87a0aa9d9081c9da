//! Two pipelines writing the same tables (one schema, the same streams): deleting one keeps the
//! tables the other still uses, rows and checkpoint included; deleting the last drops them.
//! Through the real service (serve, worker, Temporal, Postgres, the simulator).

mod common;

use std::time::Duration;

use common::{Service, call};
use serde_json::json;
use stripe_fake::Scope;

const SCHEMA: &str = "shared";

/// Whether the control database still holds the pipeline (its teardown has not finished).
fn stored(service: &Service, id: &str) -> bool {
    service
        .db
        .client()
        .query_opt("SELECT 1 FROM sync_service.pipelines WHERE id = $1", &[&id])
        .unwrap()
        .is_some()
}

fn table_exists(service: &Service, table: &str) -> bool {
    let name = format!("{SCHEMA}.{table}");
    service
        .db
        .client()
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
        .unwrap()
        .get(0)
}

/// GET requests the simulator answered on one endpoint, e.g. `GET /v1/customers`.
fn requests(service: &Service, endpoint: &str) -> u64 {
    service
        .fake
        .stats()
        .by_endpoint
        .get(endpoint)
        .copied()
        .unwrap_or(0)
}

fn delete_and_wait(service: &Service, id: &str) {
    let (code, answer) = call("DELETE", &service.url(&format!("/pipelines/{id}")), None);
    assert!((200..300).contains(&code), "DELETE {id}: {code} {answer}");
    service.wait(
        &format!("pipeline {id} torn down and forgotten"),
        Duration::from_secs(60),
        || !stored(service, id),
    );
}

#[test]
fn deleting_one_of_two_pipelines_on_the_same_tables_keeps_them_for_the_other() {
    let service = Service::start("5", 120);
    for id in ["share-a", "share-b"] {
        let body = service.pipeline_body(id, SCHEMA);
        let (code, created) = call("POST", &service.url("/pipelines"), Some(&body));
        assert_eq!(code, 201, "{created}");
    }
    for id in ["share-a", "share-b"] {
        service.wait_status(id, "ready", Duration::from_secs(180));
    }
    service.assert_exact(SCHEMA);

    delete_and_wait(&service, "share-a");
    // The other pipeline still uses both tables: they stay, rows and all.
    for table in ["customers", "products"] {
        assert!(
            table_exists(&service, table),
            "{SCHEMA}.{table} was dropped though share-b uses it\n--- worker:\n{}",
            service.worker.log_text()
        );
    }
    service.assert_exact(SCHEMA);

    // Its next step continues from its checkpoint: a change lands through the events, and
    // nothing is listed again (no backfill into tables it had to set up anew).
    let listed_before = requests(&service, "GET /v1/customers");
    let created = service
        .fake
        .create(
            Scope::test(None),
            "customers",
            json!({"email": "after-delete@example.com"}),
        )
        .unwrap();
    let new_id = created["id"].as_str().unwrap().to_owned();
    let (code, _) = call(
        "PATCH",
        &service.url("/pipelines/share-b"),
        Some(&json!({"status": "active"})),
    );
    assert_eq!(code, 200);
    service.wait(
        "the new customer to land in the kept table",
        Duration::from_secs(60),
        || service.row_ids(SCHEMA, "customers").contains(&new_id),
    );
    service.assert_exact(SCHEMA);
    assert_eq!(
        requests(&service, "GET /v1/customers"),
        listed_before,
        "share-b listed customers again after share-a's teardown"
    );
    let (_, shown) = call("GET", &service.url("/pipelines/share-b"), None);
    assert!(
        shown["checkpoint"]["reset"].is_null(),
        "share-b's checkpoint was reset: {shown}"
    );

    // The last user gone, its tables go.
    delete_and_wait(&service, "share-b");
    for table in ["customers", "products"] {
        assert!(
            !table_exists(&service, table),
            "{SCHEMA}.{table} outlived its last pipeline"
        );
    }
}
