//! The explorer's map of the real Stripe catalog (as source-stripe discovers it), checked
//! against what Stripe's published OpenAPI spec says each property refers to.

use sync_console::join_sql;
use sync_console::schema_map::{ColumnKind, SchemaMap};

fn stripe_map() -> SchemaMap {
    SchemaMap::of(&source_stripe::catalog("acct_1"))
}

#[test]
fn every_stream_is_a_table_with_its_key_and_system_columns() {
    let map = stripe_map();
    assert!(map.tables.len() >= 80, "{} tables", map.tables.len());
    let invoices = map.table("invoices").expect("invoices");
    assert_eq!(invoices.key(), ["id", "_account_id"]);
    let kind = |name: &str| {
        invoices
            .columns
            .iter()
            .find(|c| c.name == name)
            .map(|c| (c.kind, c.pg_type))
    };
    assert_eq!(kind("amount_due"), Some((ColumnKind::Typed, "bigint")));
    assert_eq!(kind("customer"), Some((ColumnKind::Typed, "text")));
    assert_eq!(kind("lines"), Some((ColumnKind::Typed, "jsonb")));
    assert_eq!(kind("_raw_data"), Some((ColumnKind::System, "jsonb")));
    assert_eq!(
        kind("_synced_at"),
        Some((ColumnKind::System, "timestamptz"))
    );
    // The source's version field shares its name with a system column: only in _raw_data.
    assert_eq!(invoices.raw_only, ["_updated_at"]);
}

#[test]
fn relations_follow_the_published_spec() {
    let map = stripe_map();
    let edge = |from: &str, column: &str| {
        map.edges
            .iter()
            .find(|e| e.from == from && e.column == column)
            .map(|e| (e.to.as_str(), e.declared))
    };
    assert_eq!(edge("invoices", "customer"), Some(("customers", true)));
    assert_eq!(edge("charges", "on_behalf_of"), Some(("accounts", true)));
    assert_eq!(
        edge("transfers", "source_transaction"),
        Some(("charges", true))
    );
    assert_eq!(
        edge("issuing_transactions", "dispute"),
        Some(("issuing_disputes", true))
    );
    assert_eq!(edge("invoices", "amount_due"), None);
    // Every edge ends at a table of the catalog.
    for e in &map.edges {
        assert!(map.table(&e.to).is_some(), "{e:?}");
    }
    let (_, incoming) = map.edges_of("customers");
    assert!(
        incoming
            .iter()
            .any(|e| e.from == "invoices" && e.column == "customer")
    );
    assert!(
        incoming.len() >= 10,
        "{} tables refer to customers",
        incoming.len()
    );
}

#[test]
fn the_join_example_matches_the_key() {
    let map = stripe_map();
    let edge = map
        .edges
        .iter()
        .find(|e| e.from == "invoices" && e.column == "customer")
        .expect("invoices.customer");
    assert_eq!(
        join_sql(&map, edge, Some("stripe")),
        "SELECT \"invoices\".*, \"customers\".*\nFROM \"stripe\".\"invoices\" AS \"invoices\"\n\
         JOIN \"stripe\".\"customers\" AS \"customers\"\n  ON \"customers\".\"id\" = \"invoices\".\"customer\"\n \
         AND \"customers\".\"_account_id\" = \"invoices\".\"_account_id\"\nLIMIT 100;"
    );
}

#[test]
fn search_finds_tables_and_columns() {
    let map = stripe_map();
    let invoices = map.table("invoices").expect("invoices");
    assert!(invoices.matches("invoice"));
    assert!(invoices.matches("amount_due"));
    assert_eq!(invoices.matching_columns("amount_d"), ["amount_due"]);
    assert!(!invoices.matches("no_such_thing"));
}
