//! The rules for records a table cannot take as they are, through the real binary: versions,
//! keys spelled two ways, values a typed column cannot hold, text Postgres cannot store; and
//! the guards around the tables (a changed key, a locked table, the tombstone field).

mod common;

use common::*;
use serde_json::{Value, json};
use test_support::TestDb;

fn one_by_one_and_together(lines: &[String], check: impl Fn(&TestDb, &str)) {
    for batch_size in [1, 1000] {
        let db = TestDb::new();
        let cat = catalog(vec![customers_stream()]);
        let out = write(&db, json!({"batch_size": batch_size}), &cat, lines);
        assert_eq!(out.code, Some(0), "batch_size {batch_size}: {}", out.stderr);
        check(&db, &format!("batch_size {batch_size}"));
    }
}

fn email(db: &TestDb, id: &str) -> Option<String> {
    db.client()
        .query_opt("SELECT email FROM stripe.customers WHERE id = $1", &[&id])
        .unwrap()
        .map(|r| r.get(0))
}

#[test]
fn a_record_without_a_version_never_replaces_a_versioned_row_whatever_the_batch() {
    let lines = vec![
        record(
            "customers",
            json!({"id": "c", "email": "v50", "_updated_at": 50}),
        ),
        record("customers", json!({"id": "c", "email": "no version"})),
        record(
            "customers",
            json!({"id": "c", "email": "null version", "_updated_at": null}),
        ),
        record(
            "customers",
            json!({"id": "c", "email": "v40", "_updated_at": 40}),
        ),
        record(
            "customers",
            json!({"id": "u", "email": "first, unversioned"}),
        ),
        record(
            "customers",
            json!({"id": "u", "email": "second, unversioned"}),
        ),
        state("customers", json!({"n": 6})),
    ];
    one_by_one_and_together(&lines, |db, run| {
        assert_eq!(email(db, "c").as_deref(), Some("v50"), "{run}");
        assert_eq!(
            email(db, "u").as_deref(),
            Some("second, unversioned"),
            "{run}"
        );
    });
    // A row without a version takes any version later.
    let db = TestDb::new();
    let cat = catalog(vec![customers_stream()]);
    write_ok(
        &db,
        json!({}),
        &cat,
        &[record("customers", json!({"id": "u", "email": "old"}))],
    );
    write_ok(
        &db,
        json!({}),
        &cat,
        &[record(
            "customers",
            json!({"id": "u", "email": "v1", "_updated_at": 1}),
        )],
    );
    assert_eq!(email(&db, "u").as_deref(), Some("v1"));
}

#[test]
fn an_unusable_version_is_rejected_named_and_kept() {
    let lines = vec![
        record(
            "customers",
            json!({"id": "c", "email": "v50", "_updated_at": 50}),
        ),
        record(
            "customers",
            json!({"id": "c", "email": "words", "_updated_at": "yesterday"}),
        ),
        record(
            "customers",
            json!({"id": "c", "email": "object", "_updated_at": {"at": 1}}),
        ),
        record(
            "customers",
            json!({"id": "c", "email": "far future", "_updated_at": 1e300}),
        ),
        record(
            "customers",
            json!({"id": "d", "email": "fine", "_updated_at": "2024-01-01T00:00:00Z"}),
        ),
        state("customers", json!({"n": 5})),
    ];
    one_by_one_and_together(&lines, |db, run| {
        assert_eq!(email(db, "c").as_deref(), Some("v50"), "{run}");
        assert_eq!(email(db, "d").as_deref(), Some("fine"), "{run}");
        let kept = rejected(db);
        assert_eq!(
            kept.iter().map(|r| r.1).collect::<Vec<_>>(),
            vec![2, 3, 4],
            "{run}"
        );
        for r in &kept {
            assert_eq!(r.2.as_deref(), Some("c"), "{run}");
            assert!(r.3.contains("\"_updated_at\""), "{run}: {}", r.3);
        }
        // Kept byte for byte.
        let second: Value = serde_json::from_slice(&kept[0].4).unwrap();
        assert_eq!(second["_updated_at"], "yesterday");
    });
    // The state says what happened to the five records.
    let db = TestDb::new();
    let out = write(&db, json!({}), &catalog(vec![customers_stream()]), &lines);
    let stats = &out.of_type("source_state")[0]["destination_stats"];
    assert_eq!(stats, &json!({"committed": 2, "rejected": 3}));
}

#[test]
fn one_key_spelled_two_ways_in_a_batch_is_one_row() {
    let lines = vec![
        record("customers", json!({"id": "ab", "email": "plain", "_updated_at": 1})),
        // The same id with an escape; written raw so the escape reaches the destination.
        r#"{"type":"record","record":{"stream":"customers","data":{"id":"a\u0062","email":"escaped","_updated_at":2}}}"#.to_owned(),
        record("customers", json!({"id": 42, "email": "number", "_updated_at": 1})),
        record("customers", json!({"id": "42", "email": "string", "_updated_at": 2})),
        state("customers", json!({"n": 4})),
    ];
    one_by_one_and_together(&lines, |db, run| {
        assert_eq!(db.count("stripe.customers"), 2, "{run}");
        assert_eq!(email(db, "ab").as_deref(), Some("escaped"), "{run}");
        assert_eq!(email(db, "42").as_deref(), Some("string"), "{run}");
    });
    // Other key types cannot be keys.
    let db = TestDb::new();
    let out = write(
        &db,
        json!({}),
        &catalog(vec![customers_stream()]),
        &[
            record("customers", json!({"id": true})),
            record("customers", json!({"id": {"nested": 1}})),
            record("customers", json!({"id": "fine"})),
        ],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(db.count("stripe.customers"), 1);
    assert_eq!(rejected(&db).len(), 2);
}

#[test]
fn a_value_a_typed_column_cannot_hold_is_null_there_and_whole_in_the_raw_object() {
    let db = TestDb::new();
    let cat = catalog(vec![customers_stream()]);
    let lines = vec![
        r#"{"type":"record","record":{"stream":"customers","data":{"id":"big","balance":9223372036854775808}}}"#.to_owned(),
        r#"{"type":"record","record":{"stream":"customers","data":{"id":"huge","balance":1e400}}}"#.to_owned(),
        record("customers", json!({"id": "half", "balance": 1.5})),
        record("customers", json!({"id": "text", "balance": "12"})),
        record("customers", json!({"id": "max", "balance": 9223372036854775807i64})),
        record("customers", json!({"id": "whole", "balance": 2.0})),
        state("customers", json!({"n": 6})),
    ];
    let out = write_ok(&db, json!({}), &cat, &lines);
    assert!(out.of_type("stream_status").is_empty(), "{}", out.stdout);
    let balance = |id: &str| -> (Option<i64>, String) {
        let row = &query(
            &db,
            &format!(
                "SELECT balance, _raw_data->>'balance' FROM stripe.customers WHERE id = '{id}'"
            ),
        )[0];
        (row.get(0), row.get(1))
    };
    assert_eq!(balance("big"), (None, "9223372036854775808".into()));
    assert_eq!(balance("huge").0, None);
    assert_eq!(balance("half"), (None, "1.5".into()), "never rounded");
    assert_eq!(balance("text").0, None);
    assert_eq!(balance("max").0, Some(i64::MAX));
    assert_eq!(balance("whole").0, Some(2));
}

#[test]
fn text_postgres_cannot_store_is_rejected_naming_line_and_field() {
    let db = TestDb::new();
    let cat = catalog(vec![customers_stream()]);
    let raw = |data: &str| {
        format!(r#"{{"type":"record","record":{{"stream":"customers","data":{data}}}}}"#)
    };
    let lines = vec![
        raw(r#"{"id":"nul-value","email":"a\u0000b"}"#),
        raw(r#"{"id":"x\u0000y"}"#),
        raw(r#"{"id":"surrogate","email":"\ud800"}"#),
        raw(r#"{"id":"pair","email":"\ud83d\ude00"}"#),
        raw(r#"{"id":"escaped-backslash","email":"\\u0000"}"#),
        state("customers", json!({"n": 5})),
    ];
    let out = write_ok(&db, json!({}), &cat, &lines);
    let mut ids: Vec<String> = query(&db, "SELECT id FROM stripe.customers ORDER BY id")
        .iter()
        .map(|r| r.get(0))
        .collect();
    ids.sort();
    assert_eq!(ids, vec!["escaped-backslash", "pair"]);
    let kept = rejected(&db);
    assert_eq!(kept.iter().map(|r| r.1).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert!(
        kept[0].3.contains("\"email\"") && kept[0].3.contains("U+0000"),
        "{}",
        kept[0].3
    );
    assert!(kept[1].3.contains("\"id\""), "{}", kept[1].3);
    assert!(kept[2].3.contains("surrogate"), "{}", kept[2].3);
    // Verbatim: the escapes are still there, byte for byte.
    assert_eq!(
        kept[0].4,
        br#"{"id":"nul-value","email":"a\u0000b"}"#.to_vec()
    );
    let logs = out.of_type("log");
    assert!(
        logs.iter()
            .any(|l| l["message"].as_str().unwrap().contains("line 1")),
        "{logs:?}"
    );
}

#[test]
fn a_changed_primary_key_is_explained() {
    let db = TestDb::new();
    let made = setup(&db, json!({}), &catalog(vec![customers_stream()]));
    assert_eq!(made.code, Some(0), "{}", made.stderr);
    let mut rekeyed = customers_stream();
    rekeyed["primary_key"] = json!([["id"], ["_account_id"]]);
    let out = write(
        &db,
        json!({}),
        &catalog(vec![rekeyed]),
        &[record(
            "customers",
            json!({"id": "c", "_account_id": "acct_1"}),
        )],
    );
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert_eq!(
        out.of_type("connection_status")[0]["failure_type"],
        "config_error"
    );
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(
        said.contains("primary key (id)")
            && said.contains("(id, _account_id)")
            && said.contains("teardown"),
        "{said}"
    );
}

#[test]
fn a_locked_table_fails_its_stream_with_the_reason_instead_of_hanging() {
    let db = TestDb::new();
    let cat = catalog(vec![customers_stream()]);
    write_ok(
        &db,
        json!({}),
        &cat,
        &[record("customers", json!({"id": "c0"}))],
    );
    let mut holder = db.client();
    let mut tx = holder.transaction().unwrap();
    tx.batch_execute("LOCK TABLE stripe.customers IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let started = std::time::Instant::now();
    let out = write(
        &db,
        json!({"lock_timeout_ms": 300}),
        &cat,
        &[
            record("customers", json!({"id": "c1"})),
            state("customers", json!({"n": 1})),
        ],
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(said.contains("lock_timeout_ms"), "{said}");
    assert!(
        out.of_type("source_state").is_empty(),
        "nothing acknowledged: {}",
        out.stdout
    );
    tx.rollback().unwrap();
}

#[test]
fn the_catalogs_soft_delete_field_marks_tombstones() {
    let db = TestDb::new();
    let mut stream = customers_stream();
    stream["soft_delete_field"] = json!("is_gone");
    let cat = catalog(vec![stream]);
    write_ok(
        &db,
        json!({}),
        &cat,
        &[
            record("customers", json!({"id": "a", "_updated_at": 1})),
            record("customers", json!({"id": "b", "_updated_at": 1})),
        ],
    );
    write_ok(
        &db,
        json!({}),
        &cat,
        &[
            record(
                "customers",
                json!({"id": "a", "is_gone": true, "_updated_at": 2}),
            ),
            // `deleted` means nothing for this stream.
            record(
                "customers",
                json!({"id": "b", "deleted": true, "_updated_at": 2}),
            ),
        ],
    );
    let deleted: Vec<(String, bool)> =
        query(&db, "SELECT id, _deleted FROM stripe.customers ORDER BY id")
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
    assert_eq!(deleted, vec![("a".into(), true), ("b".into(), false)]);
}

#[test]
fn integer_columns_made_by_an_earlier_version_are_recomputed() {
    let db = TestDb::new();
    let cat = catalog(vec![customers_stream()]);
    write_ok(
        &db,
        json!({}),
        &cat,
        &[record("customers", json!({"id": "c", "balance": 1.5}))],
    );
    // The table as the earlier version made it: marked without a columns version, and a bare
    // cast, which rounds and overflows.
    db.client()
        .batch_execute(
            "COMMENT ON TABLE stripe.customers IS 'created by dest-postgres for stream customers'; \
             ALTER TABLE stripe.customers DROP COLUMN balance, ADD COLUMN balance bigint \
             GENERATED ALWAYS AS (CASE WHEN jsonb_typeof(_raw_data -> 'balance') = 'number' THEN (_raw_data -> 'balance')::bigint END) STORED",
        )
        .unwrap();
    let before: Option<i64> = query(&db, "SELECT balance FROM stripe.customers")[0].get(0);
    assert_eq!(before, Some(2), "the old cast rounds");
    let out = write_ok(
        &db,
        json!({}),
        &cat,
        &[r#"{"type":"record","record":{"stream":"customers","data":{"id":"big","balance":9223372036854775808}}}"#.to_owned()],
    );
    assert!(out.of_type("stream_status").is_empty(), "{}", out.stdout);
    let after: Vec<Option<i64>> = query(&db, "SELECT balance FROM stripe.customers ORDER BY id")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(after, vec![None, None]);
}

#[test]
fn columns_come_from_the_catalog_only() {
    let db = TestDb::new();
    let stream = json!({
        "name": "tickets",
        "primary_key": [["number"]],
        "json_schema": {"type": "object", "properties": {
            "number": {"type": "integer"},
            "title": {"type": "string"}
        }}
    });
    write_ok(
        &db,
        json!({}),
        &catalog(vec![stream]),
        &[record(
            "tickets",
            json!({"number": 7, "title": "t", "_account_id": "acct_1"}),
        )],
    );
    let columns: Vec<String> = query(
        &db,
        "SELECT column_name::text FROM information_schema.columns \
         WHERE table_schema = 'stripe' AND table_name = 'tickets' ORDER BY column_name",
    )
    .iter()
    .map(|r| r.get(0))
    .collect();
    assert_eq!(
        columns,
        vec![
            "_deleted",
            "_deleted_reason",
            "_raw_data",
            "_synced_at",
            "_updated_at",
            "number",
            "title"
        ]
    );
}

#[test]
fn a_late_older_version_never_brings_a_hard_deleted_row_back() {
    for batch_size in [1, 1000] {
        let db = TestDb::new();
        let cat = catalog(vec![customers_stream()]);
        let config = json!({"delete_mode": "hard", "batch_size": batch_size});
        write_ok(
            &db,
            config.clone(),
            &cat,
            &[
                record(
                    "customers",
                    json!({"id": "a", "email": "v5", "_updated_at": 5}),
                ),
                record(
                    "customers",
                    json!({"id": "b", "email": "v5", "_updated_at": 5}),
                ),
            ],
        );
        write_ok(
            &db,
            config.clone(),
            &cat,
            &[record(
                "customers",
                json!({"id": "a", "deleted": true, "_updated_at": 10}),
            )],
        );
        // Out of order, in a later run and in the same batch as a newer change of another row.
        write_ok(
            &db,
            config.clone(),
            &cat,
            &[
                record(
                    "customers",
                    json!({"id": "a", "email": "v7 (late)", "_updated_at": 7}),
                ),
                record(
                    "customers",
                    json!({"id": "b", "email": "v8", "_updated_at": 8}),
                ),
            ],
        );
        assert_eq!(email(&db, "a"), None, "batch_size {batch_size}");
        assert_eq!(
            email(&db, "b").as_deref(),
            Some("v8"),
            "batch_size {batch_size}"
        );
        let remembered: i64 = query(
            &db,
            "SELECT count(*) FROM stripe._tombstones WHERE stream = 'customers'",
        )[0]
        .get(0);
        assert_eq!(remembered, 1);
    }
}

fn present(db: &TestDb, id: &str) -> Option<bool> {
    db.client()
        .query_opt(
            "SELECT NOT _deleted FROM stripe.customers WHERE id = $1",
            &[&id],
        )
        .unwrap()
        .map(|r| r.get(0))
}

#[test]
fn a_deletion_is_not_undone_by_a_version_of_its_own_second() {
    let update = |email: &str| {
        record(
            "customers",
            json!({"id": "a", "email": email, "_updated_at": 10}),
        )
    };
    let deletion = record(
        "customers",
        json!({"id": "a", "deleted": true, "_updated_at": 10}),
    );
    for mode in ["soft", "hard"] {
        for batch_size in [1, 1000] {
            let db = TestDb::new();
            let cat = catalog(vec![customers_stream()]);
            let config = json!({"delete_mode": mode, "batch_size": batch_size});
            write_ok(&db, config.clone(), &cat, &[update("v10 first")]);
            // The deletion then, written later, a change of the same second (webhooks reordered).
            write_ok(
                &db,
                config.clone(),
                &cat,
                &[deletion.clone(), update("v10 late")],
            );
            let gone = if mode == "soft" { Some(false) } else { None };
            assert_eq!(present(&db, "a"), gone, "{mode}, batch_size {batch_size}");
            // Another run brings the same-second change again.
            write_ok(&db, config.clone(), &cat, &[update("v10 again")]);
            assert_eq!(present(&db, "a"), gone, "{mode}, batch_size {batch_size}");
            // While a change of the same second still replaces a change.
            write_ok(
                &db,
                config.clone(),
                &cat,
                &[record(
                    "customers",
                    json!({"id": "b", "email": "first", "_updated_at": 10}),
                )],
            );
            write_ok(
                &db,
                config.clone(),
                &cat,
                &[record(
                    "customers",
                    json!({"id": "b", "email": "second", "_updated_at": 10}),
                )],
            );
            assert_eq!(email(&db, "b").as_deref(), Some("second"));
        }
    }
}
