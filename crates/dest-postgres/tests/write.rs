//! dest-postgres against a real Postgres, through the real binary.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use test_support::{Bin, TestDb, bin_path};

mod common;

use common::*;

#[test]
fn setup_is_idempotent_and_safe_to_run_concurrently() {
    let db = TestDb::new();
    let cat = catalog(vec![customers_stream()]);
    let children: Vec<Child> = (0..3)
        .map(|_| {
            Command::new(bin_path("dest-postgres"))
                .args([
                    "setup",
                    "--config",
                    &config(&db, json!({})).to_string(),
                    "--catalog",
                    &cat.to_string(),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let again = setup(&db, json!({}), &cat);
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert!(
        !again.stderr.contains("created table"),
        "a second setup creates nothing: {}",
        again.stderr
    );
    let tables: i64 = query(
        &db,
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'stripe' AND tablename NOT IN ('_rejected_records', '_tombstones', '_sync_tables', '_listings', '_listing_seen')",
    )[0]
    .get(0);
    assert_eq!(tables, 1);
}

#[test]
fn column_types_follow_a_realistic_stripe_schema() {
    let db = TestDb::new();
    let stream = json!({
        "name": "subscriptions",
        "primary_key": [["id"], ["_account_id"]],
        "newer_than_field": "_updated_at",
        "json_schema": {"type": "object", "properties": {
            "id": {"type": "string"},
            "object": {"type": "string", "enum": ["subscription"]},
            "status": {"type": ["string", "null"], "enum": ["active", "canceled", null]},
            "customer": {"type": ["string", "null"], "x-expandable": true},
            "quantity": {"oneOf": [{"type": "integer"}, {"type": "null"}]},
            "created": {"type": ["integer", "null"]},
            "cancel_at_period_end": {"type": ["boolean", "null"]},
            "application_fee_percent": {"type": ["number", "null"]},
            "items": {"type": ["object", "null"]},
            "discounts": {"type": ["array", "null"]},
            "metadata": {"type": "object"},
            "unit_amount_decimal": {"type": ["string", "null"], "format": "decimal"},
            "_account_id": {"type": "string"},
            "_updated_at": {"type": "integer"}
        }}
    });
    let out = setup(&db, json!({}), &catalog(vec![stream]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let rows = query(
        &db,
        "SELECT column_name, data_type, is_generated FROM information_schema.columns WHERE table_schema = 'stripe' AND table_name = 'subscriptions' ORDER BY column_name",
    );
    let types: std::collections::BTreeMap<String, (String, String)> = rows
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();
    let expect = [
        ("id", "text", "NEVER"),
        ("_account_id", "text", "NEVER"),
        ("_raw_data", "jsonb", "NEVER"),
        ("_updated_at", "timestamp with time zone", "NEVER"),
        ("_synced_at", "timestamp with time zone", "NEVER"),
        ("_deleted", "boolean", "NEVER"),
        ("_deleted_reason", "text", "NEVER"),
        ("object", "text", "ALWAYS"),
        ("status", "text", "ALWAYS"),
        ("customer", "text", "ALWAYS"),
        ("quantity", "bigint", "ALWAYS"),
        ("created", "bigint", "ALWAYS"),
        ("cancel_at_period_end", "boolean", "ALWAYS"),
        ("application_fee_percent", "numeric", "ALWAYS"),
        ("items", "jsonb", "ALWAYS"),
        ("discounts", "jsonb", "ALWAYS"),
        ("metadata", "jsonb", "ALWAYS"),
        ("unit_amount_decimal", "text", "ALWAYS"),
    ];
    for (column, data_type, generated) in expect {
        assert_eq!(
            types.get(column),
            Some(&(data_type.to_owned(), generated.to_owned())),
            "column {column}: {types:?}"
        );
    }
    assert_eq!(types.len(), expect.len(), "{types:?}");
    let pk: Vec<String> = query(
        &db,
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'stripe.subscriptions'::regclass AND i.indisprimary ORDER BY a.attname",
    )
    .iter()
    .map(|r| r.get(0))
    .collect();
    assert_eq!(pk, vec!["_account_id", "id"]);

    // The typed columns read the right values, expanded references included.
    let out = write(
        &db,
        json!({}),
        &catalog(vec![
            json!({"name": "subscriptions", "primary_key": [["id"], ["_account_id"]], "newer_than_field": "_updated_at"}),
        ]),
        &[record(
            "subscriptions",
            json!({"id": "sub_1", "_account_id": "acct_1", "_updated_at": 5, "status": "active", "customer": {"id": "cus_9", "object": "customer"}, "quantity": 3, "created": 1700000000, "cancel_at_period_end": false, "application_fee_percent": 1.5, "metadata": {"a": "b"}, "discounts": null}),
        )],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let row = &query(
        &db,
        "SELECT status, customer, quantity, created, cancel_at_period_end, application_fee_percent::text, metadata->>'a', discounts IS NULL FROM stripe.subscriptions",
    )[0];
    assert_eq!(row.get::<_, String>(0), "active");
    assert_eq!(row.get::<_, String>(1), "cus_9");
    assert_eq!(row.get::<_, i64>(2), 3);
    assert_eq!(row.get::<_, i64>(3), 1700000000);
    assert!(!row.get::<_, bool>(4));
    assert_eq!(row.get::<_, String>(5), "1.5");
    assert_eq!(row.get::<_, String>(6), "b");
    assert!(row.get::<_, bool>(7), "JSON null becomes SQL NULL");
}

#[test]
fn stale_writes_never_overwrite_newer_rows() {
    let db = TestDb::new();
    let cat = catalog(vec![customers_stream()]);
    let email = |db: &TestDb| -> String {
        query(db, "SELECT email FROM stripe.customers WHERE id = 'cus_1'")[0].get(0)
    };
    // Separate runs, so each version is its own batch.
    write_ok(
        &db,
        json!({}),
        &cat,
        &[record(
            "customers",
            json!({"id": "cus_1", "email": "v2", "_updated_at": 200}),
        )],
    );
    write_ok(
        &db,
        json!({}),
        &cat,
        &[record(
            "customers",
            json!({"id": "cus_1", "email": "v1 (stale)", "_updated_at": 100}),
        )],
    );
    assert_eq!(
        email(&db),
        "v2",
        "an older version must not overwrite a newer one"
    );
    write_ok(
        &db,
        json!({}),
        &cat,
        &[record(
            "customers",
            json!({"id": "cus_1", "email": "v3", "_updated_at": 300}),
        )],
    );
    assert_eq!(email(&db), "v3", "a newer version overwrites");
    write_ok(
        &db,
        json!({}),
        &cat,
        &[record(
            "customers",
            json!({"id": "cus_1", "email": "v3 again", "_updated_at": 300}),
        )],
    );
    assert_eq!(
        email(&db),
        "v3 again",
        "equal timestamps: the last writer wins"
    );
    let updated: i64 = query(
        &db,
        "SELECT extract(epoch FROM _updated_at)::bigint FROM stripe.customers",
    )[0]
    .get(0);
    assert_eq!(updated, 300);
}

#[test]
fn duplicate_keys_in_one_batch_reduce_to_the_newest() {
    let db = TestDb::new();
    let cat = catalog(vec![customers_stream()]);
    let lines = vec![
        record(
            "customers",
            json!({"id": "cus_1", "email": "b", "_updated_at": 20}),
        ),
        record(
            "customers",
            json!({"id": "cus_1", "email": "c (newest)", "_updated_at": 30}),
        ),
        record(
            "customers",
            json!({"id": "cus_1", "email": "a", "_updated_at": 10}),
        ),
        record(
            "customers",
            json!({"id": "cus_2", "email": "first", "_updated_at": 5}),
        ),
        record(
            "customers",
            json!({"id": "cus_2", "email": "second", "_updated_at": 5}),
        ),
        state("customers", json!({"n": 5})),
    ];
    let out = write(&db, json!({}), &cat, &lines);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let rows: Vec<(String, String)> =
        query(&db, "SELECT id, email FROM stripe.customers ORDER BY id")
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
    assert_eq!(
        rows,
        vec![
            ("cus_1".into(), "c (newest)".into()),
            ("cus_2".into(), "second".into())
        ]
    );
    assert_eq!(
        out.of_type("source_state")[0]["destination_stats"]["committed"],
        5
    );
}

#[test]
fn tombstones_soft_delete_by_default_and_hard_delete_on_request() {
    for mode in ["soft", "hard"] {
        let db = TestDb::new();
        let cat = catalog(vec![customers_stream()]);
        write_ok(
            &db,
            json!({"delete_mode": mode}),
            &cat,
            &[
                record(
                    "customers",
                    json!({"id": "cus_1", "email": "a", "_updated_at": 10}),
                ),
                record(
                    "customers",
                    json!({"id": "cus_2", "email": "b", "_updated_at": 10}),
                ),
            ],
        );
        let out = write(
            &db,
            json!({"delete_mode": mode}),
            &cat,
            &[
                record(
                    "customers",
                    json!({"id": "cus_1", "email": "a", "deleted": true, "_updated_at": 20}),
                ),
                // A tombstone older than the row is stale and ignored.
                record(
                    "customers",
                    json!({"id": "cus_2", "deleted": true, "_updated_at": 5}),
                ),
            ],
        );
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        let rows: Vec<(String, bool)> =
            query(&db, "SELECT id, _deleted FROM stripe.customers ORDER BY id")
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
        match mode {
            "soft" => assert_eq!(rows, vec![("cus_1".into(), true), ("cus_2".into(), false)]),
            _ => assert_eq!(rows, vec![("cus_2".into(), false)]),
        }
        // Created and deleted within one batch: the tombstone is the newest version.
        write_ok(
            &db,
            json!({"delete_mode": mode}),
            &cat,
            &[
                record(
                    "customers",
                    json!({"id": "cus_3", "email": "c", "_updated_at": 30}),
                ),
                record(
                    "customers",
                    json!({"id": "cus_3", "deleted": true, "_updated_at": 31}),
                ),
            ],
        );
        let cus_3 = db.count("stripe.customers WHERE id = 'cus_3' AND _deleted");
        assert_eq!(cus_3, if mode == "soft" { 1 } else { 0 }, "{mode}");
        assert_eq!(
            db.count("stripe.customers WHERE id = 'cus_3'"),
            cus_3,
            "{mode}"
        );
    }
}

#[test]
fn a_new_property_adds_a_column_and_a_changed_type_keeps_the_data() {
    let db = TestDb::new();
    let v1 = catalog(vec![customers_stream()]);
    let out = write(
        &db,
        json!({}),
        &v1,
        &[record(
            "customers",
            json!({"id": "cus_1", "email": "a@b.c", "phone": "+1555", "balance": 7, "_updated_at": 1}),
        )],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);

    let mut stream = customers_stream();
    stream["json_schema"]["properties"]["phone"] = json!({"type": ["string", "null"]});
    stream["json_schema"]["properties"]["balance"] = json!({"type": "string"});
    let out = setup(&db, json!({}), &catalog(vec![stream]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains("balance") && out.stderr.contains("stays bigint"),
        "a type change is reported: {}",
        out.stderr
    );
    let row = &query(&db, "SELECT phone, balance FROM stripe.customers")[0];
    assert_eq!(
        row.get::<_, String>(0),
        "+1555",
        "the new column is filled from the raw data of existing rows"
    );
    assert_eq!(
        row.get::<_, i64>(1),
        7,
        "the old column and its data are kept"
    );
}

#[test]
fn hostile_stream_and_property_names_create_correct_tables() {
    let db = TestDb::new();
    db.client()
        .batch_execute("CREATE TABLE canary (x int)")
        .unwrap();
    let stream_name = "we\"ird'; DROP TABLE canary; -- ñ表";
    let long_a = format!("{}_a", "p".repeat(70));
    let long_b = format!("{}_b", "p".repeat(70));
    let stream = json!({
        "name": stream_name,
        "primary_key": [["id"]],
        "newer_than_field": "_updated_at",
        "json_schema": {"type": "object", "properties": {
            "id": {"type": "string"},
            "a\"b": {"type": "string"},
            "c'); DROP TABLE canary; --": {"type": "integer"},
            "émoji 🎉": {"type": "boolean"},
            long_a.clone(): {"type": "string"},
            long_b.clone(): {"type": "string"}
        }}
    });
    let data = json!({"id": "x1", "a\"b": "quoted", "c'); DROP TABLE canary; --": 42, "émoji 🎉": true, long_a.clone(): "A", long_b.clone(): "B", "_updated_at": 1});
    let out = write(
        &db,
        json!({}),
        &catalog(vec![stream]),
        &[record(stream_name, data), state(stream_name, json!({}))],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.of_type("source_state").len(), 1);
    let canary: i64 = query(
        &db,
        "SELECT count(*) FROM pg_tables WHERE tablename = 'canary'",
    )[0]
    .get(0);
    assert_eq!(canary, 1, "nothing was injected");
    let client = &mut db.client();
    let table = format!("\"stripe\".\"{}\"", stream_name.replace('"', "\"\""));
    let row = client
        .query_one(
            &format!(
                "SELECT \"a\"\"b\", \"c'); DROP TABLE canary; --\", \"émoji 🎉\" FROM {table}"
            ),
            &[],
        )
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "quoted");
    assert_eq!(row.get::<_, i64>(1), 42);
    assert!(row.get::<_, bool>(2));
    let long_columns: Vec<(String, String)> = client
        .query(
            "SELECT column_name, generation_expression FROM information_schema.columns WHERE table_schema = 'stripe' AND column_name LIKE 'ppp%' ORDER BY column_name",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        long_columns.len(),
        2,
        "two long names, two distinct columns: {long_columns:?}"
    );
    assert!(long_columns.iter().all(|(c, _)| c.len() <= 63));
    let values: Vec<String> = long_columns
        .iter()
        .map(|(c, _)| {
            client
                .query_one(&format!("SELECT \"{c}\" FROM {table}"), &[])
                .unwrap()
                .get(0)
        })
        .collect();
    assert_eq!(
        values
            .iter()
            .map(String::as_str)
            .collect::<std::collections::BTreeSet<_>>(),
        ["A", "B"].into_iter().collect()
    );
}

#[test]
fn teardown_removes_only_what_setup_created() {
    let db = TestDb::new();
    let made = setup(&db, json!({}), &catalog(vec![customers_stream()]));
    assert_eq!(made.code, Some(0), "{}", made.stderr);
    let stripe_schemas = "pg_namespace WHERE nspname = 'stripe'";
    assert_eq!(db.count(stripe_schemas), 1);
    // A user's own table in the schema: teardown must leave it, and so the schema.
    db.client()
        .batch_execute("CREATE TABLE stripe.notes (id int); INSERT INTO stripe.notes VALUES (1)")
        .unwrap();
    let out = teardown(&db, json!({}));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        db.count("pg_tables WHERE schemaname = 'stripe' AND tablename = 'customers'"),
        0
    );
    assert_eq!(
        db.count("pg_tables WHERE schemaname = 'stripe' AND tablename = '_rejected_records'"),
        0
    );
    assert_eq!(db.count("stripe.notes"), 1, "the user's table stays");
    assert_eq!(
        db.count(stripe_schemas),
        1,
        "and so does the schema around it"
    );
    assert!(out.stderr.contains("kept schema"), "{}", out.stderr);
    // Once empty, the schema setup created goes too.
    db.client()
        .batch_execute("DROP TABLE stripe.notes")
        .unwrap();
    let again = teardown(&db, json!({}));
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert_eq!(db.count(stripe_schemas), 0);

    // A schema setup did not create is never dropped, even when empty afterwards.
    db.client().batch_execute("CREATE SCHEMA mine").unwrap();
    let made = setup(
        &db,
        json!({"schema": "mine"}),
        &catalog(vec![customers_stream()]),
    );
    assert_eq!(made.code, Some(0), "{}", made.stderr);
    let out = teardown(&db, json!({"schema": "mine"}));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(db.count("pg_tables WHERE schemaname = 'mine'"), 0);
    assert_eq!(db.count("pg_namespace WHERE nspname = 'mine'"), 1);
    // public: only our tables.
    let made = setup(
        &db,
        json!({"schema": "public"}),
        &catalog(vec![customers_stream()]),
    );
    assert_eq!(made.code, Some(0), "{}", made.stderr);
    db.client()
        .batch_execute("CREATE TABLE public.keep_me (id int)")
        .unwrap();
    assert_eq!(teardown(&db, json!({"schema": "public"})).code, Some(0));
    assert_eq!(
        db.count("pg_tables WHERE schemaname = 'public' AND tablename = 'customers'"),
        0
    );
    assert_eq!(
        db.count("pg_tables WHERE schemaname = 'public' AND tablename = 'keep_me'"),
        1
    );
}

#[test]
fn every_command_refuses_a_system_schema() {
    let db = TestDb::new();
    let cat = catalog(vec![customers_stream()]);
    for schema in ["information_schema", "pg_catalog", "pg_toast", "pg_mine"] {
        let extra = json!({"schema": schema});
        for out in [
            setup(&db, extra.clone(), &cat),
            teardown(&db, extra.clone()),
            write(
                &db,
                extra.clone(),
                &cat,
                &[record("customers", json!({"id": "c"}))],
            ),
        ] {
            assert_ne!(out.code, Some(0), "{schema}: {}", out.stdout);
            let said = format!("{}{}", out.stdout, out.stderr);
            assert!(
                said.contains("system schema") && said.contains("schema"),
                "{schema}: {said}"
            );
        }
    }
    assert_eq!(
        db.count("information_schema.tables WHERE table_name = 'customers'"),
        0
    );
}

fn check(url: &str) -> Value {
    let out = Bin::new("dest-postgres")
        .arg("check")
        .json("config", &json!({"url": url}))
        .run();
    assert_eq!(
        out.code,
        Some(0),
        "check exits 0 whatever it reports: {}",
        out.stderr
    );
    out.of_type("connection_status").remove(0)
}

#[test]
fn check_says_exactly_what_is_wrong() {
    let db = TestDb::new();
    assert_eq!(check(db.url())["status"], "succeeded");

    let unreachable = check("postgres://postgres:s3cretpw@127.0.0.1:1/db?connect_timeout=2");
    assert_eq!(unreachable["status"], "failed");
    let message = unreachable["message"].as_str().unwrap();
    assert!(
        message.starts_with("cannot reach the Postgres server at 127.0.0.1:1/db"),
        "{message}"
    );
    assert!(!message.contains("s3cretpw"));

    let base = db.url().rsplit_once('/').unwrap().0.to_owned();
    let no_db = check(&format!("{base}/no_such_database_xyz"));
    assert!(
        no_db["message"]
            .as_str()
            .unwrap()
            .starts_with("the database does not exist"),
        "{no_db}"
    );

    let host_part = base
        .split_once("://")
        .unwrap()
        .1
        .split_once('@')
        .map(|(_, h)| h.to_owned())
        .unwrap_or_else(|| base.split_once("://").unwrap().1.to_owned());
    let auth = check(&format!(
        "postgres://no_such_role_xyz:pw@{host_part}/{}",
        db.name()
    ));
    assert!(
        auth["message"]
            .as_str()
            .unwrap()
            .starts_with("authentication failed"),
        "{auth}"
    );
    assert_eq!(auth["failure_type"], "config_error");

    let ssl_on: String = query(&db, "SHOW ssl")[0].get(0);
    let require = check(&format!("{}?sslmode=require", db.url()));
    if ssl_on == "on" {
        // require encrypts without verifying; verify-* check against a CA.
        assert_eq!(require["status"], "succeeded", "{require}");
        let unverified = check(&format!("{}?sslmode=verify-full", db.url()));
        assert!(
            unverified["message"]
                .as_str()
                .unwrap()
                .starts_with("TLS negotiation failed"),
            "{unverified}"
        );
        let ca: String =
            query(&db, "SELECT pg_read_file(current_setting('ssl_cert_file'))")[0].get(0);
        let with_ca = |mode: &str| {
            let out = Bin::new("dest-postgres")
                .arg("check")
                .json(
                    "config",
                    &json!({"url": format!("{}?sslmode={mode}", db.url()), "ssl_ca_pem": ca}),
                )
                .run();
            out.of_type("connection_status").remove(0)
        };
        assert_eq!(
            with_ca("verify-ca")["status"],
            "succeeded",
            "verify-ca accepts the server's CA whatever the host name"
        );
        let bad = Bin::new("dest-postgres")
            .arg("check")
            .json("config", &json!({"url": format!("{}?sslmode=verify-ca", db.url()), "ssl_ca_pem": "not a certificate"}))
            .run();
        assert!(
            bad.of_type("connection_status")[0]["message"]
                .as_str()
                .unwrap()
                .contains("ssl_ca_pem"),
            "{}",
            bad.stdout
        );
    } else {
        assert!(
            require["message"]
                .as_str()
                .unwrap()
                .starts_with("TLS negotiation failed"),
            "{require}"
        );
    }

    // A role that may connect but not create anything.
    let role = format!("r_{}", db.name());
    db.client()
        .batch_execute(&format!("CREATE ROLE \"{role}\" LOGIN"))
        .unwrap();
    let denied = check(&format!("postgres://{role}@{host_part}/{}", db.name()));
    db.client()
        .batch_execute(&format!("DROP ROLE \"{role}\""))
        .unwrap();
    assert!(
        denied["message"]
            .as_str()
            .unwrap()
            .starts_with("permission denied"),
        "{denied}"
    );
}

#[test]
fn a_malformed_line_fails_the_run_with_its_number_and_commits_nothing_after_the_last_state() {
    let db = TestDb::new();
    let cat = catalog(vec![customers_stream()]);
    let mut lines: Vec<String> = (0..3)
        .map(|i| {
            record(
                "customers",
                json!({"id": format!("cus_{i}"), "_updated_at": 1}),
            )
        })
        .collect();
    lines.push(state("customers", json!({"n": 3})));
    lines.extend((3..5).map(|i| {
        record(
            "customers",
            json!({"id": format!("cus_{i}"), "_updated_at": 1}),
        )
    }));
    lines.push("{\"type\":\"record\",\"record\":{\"stream\":\"customers\",\"data\":".to_owned());
    lines.push(record(
        "customers",
        json!({"id": "cus_9", "_updated_at": 1}),
    ));
    let out = write(&db, json!({"flush_interval_ms": 60000}), &cat, &lines);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("line 7"), "{}", out.stderr);
    let states = out.of_type("source_state");
    assert_eq!(states.len(), 1);
    assert_eq!(states[0]["destination_stats"]["committed"], 3);
    assert_eq!(out.of_type("connection_status")[0]["status"], "failed");
    assert_eq!(
        db.count("stripe.customers"),
        3,
        "the records after the last state were not committed"
    );
}

#[test]
fn a_failure_confined_to_one_stream_lets_the_others_finish() {
    let db = TestDb::new();
    let mut bad = customers_stream();
    bad["name"] = json!("invoices");
    let cat = catalog(vec![customers_stream(), bad]);
    assert_eq!(setup(&db, json!({}), &cat).code, Some(0));
    // A table the database refuses to write (a trigger standing in for a broken table).
    db.client()
        .batch_execute(
            "CREATE FUNCTION stripe.refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'out of range: this table is broken'; END $$; \
             CREATE TRIGGER refuse BEFORE INSERT ON stripe.invoices FOR EACH ROW EXECUTE FUNCTION stripe.refuse()",
        )
        .unwrap();
    let lines = vec![
        record(
            "invoices",
            json!({"id": "in_1", "balance": 1, "_updated_at": 1}),
        ),
        record("customers", json!({"id": "cus_1", "_updated_at": 1})),
        state("invoices", json!({"n": 1})),
        state("customers", json!({"n": 1})),
        record(
            "invoices",
            json!({"id": "in_2", "balance": 1, "_updated_at": 1}),
        ),
        record("customers", json!({"id": "cus_2", "_updated_at": 1})),
        state("invoices", json!({"n": 2})),
        state("customers", json!({"n": 2})),
        global(json!({"cursor": 1})),
    ];
    let out = write(&db, json!({}), &cat, &lines);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let errors = out.of_type("stream_status");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["stream"], "invoices");
    let error = errors[0]["error"].as_str().unwrap();
    assert!(
        error.contains("\"invoices\"")
            && error.contains("stripe.invoices")
            && error.contains("out of range"),
        "{error}"
    );
    let states = out.of_type("source_state");
    let streams: Vec<&str> = states
        .iter()
        .map(|s| s["stream"].as_str().unwrap_or("<global>"))
        .collect();
    assert_eq!(
        streams,
        vec!["customers", "customers"],
        "no state of the failed stream, and no global state after it"
    );
    assert_eq!(db.count("stripe.customers"), 2);
    assert_eq!(db.count("stripe.invoices"), 0);
}

#[test]
fn global_state_waits_for_every_stream() {
    let db = TestDb::new();
    let mut other = customers_stream();
    other["name"] = json!("products");
    let cat = catalog(vec![customers_stream(), other]);
    let lines = vec![
        record("customers", json!({"id": "c1", "_updated_at": 1})),
        record("products", json!({"id": "p1", "_updated_at": 1})),
        record("products", json!({"id": "p2", "_updated_at": 1})),
        global(json!({"events_cursor": 10})),
        record("customers", json!({"id": "c2", "_updated_at": 1})),
        global(json!({"events_cursor": 20})),
    ];
    let out = write(&db, json!({}), &cat, &lines);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let states = out.of_type("source_state");
    let committed: Vec<(i64, u64)> = states
        .iter()
        .map(|s| {
            (
                s["data"]["events_cursor"].as_i64().unwrap(),
                s["destination_stats"]["committed"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(committed, vec![(10, 3), (20, 1)]);
}

/// A running `write` fed and read line by line.
struct Writer {
    child: Child,
    stdin: Option<ChildStdin>,
    /// stdout's lines, read by a thread so that a wait can time out instead of hanging.
    stdout: mpsc::Receiver<String>,
}

/// Longer than any flush these tests cause takes, even on a loaded machine.
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(60);

impl Writer {
    fn start(db: &TestDb, extra: Value, catalog: &Value) -> Writer {
        let mut child = Command::new(bin_path("dest-postgres"))
            .args([
                "write",
                "--config",
                &config(db, extra).to_string(),
                "--catalog",
                &catalog.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Writer {
            child,
            stdin,
            stdout: rx,
        }
    }

    fn send(&mut self, lines: &[String]) {
        let stdin = self.stdin.as_mut().unwrap();
        for l in lines {
            writeln!(stdin, "{l}").unwrap();
        }
        stdin.flush().unwrap();
    }

    /// The next message; `None` when stdout ended. Panics when nothing comes for a minute.
    fn next_message(&mut self) -> Option<Value> {
        match self.stdout.recv_timeout(MESSAGE_TIMEOUT) {
            Ok(line) => Some(serde_json::from_str(&line).unwrap()),
            Err(mpsc::RecvTimeoutError::Disconnected) => None,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("dest-postgres printed nothing for {MESSAGE_TIMEOUT:?}")
            }
        }
    }
}

#[test]
fn states_are_re_emitted_only_after_their_records_are_visible_to_another_connection() {
    let db = TestDb::new();
    let cat = catalog(vec![customers_stream()]);
    let mut w = Writer::start(
        &db,
        json!({"batch_size": 1000, "flush_interval_ms": 300}),
        &cat,
    );
    let mut sent = 0;
    for round in 0..4 {
        let batch: Vec<String> = (0..250)
            .map(|i| {
                record(
                    "customers",
                    json!({"id": format!("cus_{round}_{i}"), "_updated_at": 1}),
                )
            })
            .collect();
        sent += batch.len();
        w.send(&batch);
        w.send(&[state("customers", json!({"round": round}))]);
        // The state arrives by age (flush_interval_ms), not by size or end of input.
        let started = Instant::now();
        let message = w.next_message().expect("a state");
        assert_eq!(message["source_state"]["data"]["round"], round);
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(
            db.count("stripe.customers"),
            sent as i64,
            "state of round {round} arrived before its rows were visible"
        );
        assert_eq!(
            message["source_state"]["destination_stats"]["committed"],
            250
        );
    }
    drop(w.stdin.take());
    assert!(w.child.wait().unwrap().success());
}

#[test]
fn kill_9_mid_write_leaves_whole_batches_backed_by_every_printed_state() {
    let db = TestDb::new();
    let cat = catalog(vec![customers_stream()]);
    let batch_size = 500;
    let lanes = 2;
    let mut w = Writer::start(
        &db,
        json!({"batch_size": batch_size, "connections_per_stream": lanes, "flush_interval_ms": 600000}),
        &cat,
    );
    let mut stdin = w.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        for i in 0..200_000u64 {
            let mut line = record(
                "customers",
                json!({"id": format!("cus_{i:07}"), "email": "x@example.com", "_updated_at": 1}),
            );
            if i % 250 == 249 {
                line = format!("{line}\n{}", state("customers", json!({"upto": i})));
            }
            if writeln!(stdin, "{line}").is_err() {
                return;
            }
        }
    });
    let mut printed = Vec::new();
    while printed.len() < 5 {
        let m = w.next_message().expect("states before the kill");
        printed.push(m["source_state"]["data"]["upto"].as_u64().unwrap());
    }
    w.child.kill().unwrap(); // SIGKILL
    w.child.wait().unwrap();
    let _ = feeder.join();
    let rows = db.count("stripe.customers") as u64;
    assert!(rows > 0);
    // Each lane commits batches of batch_size / lanes rows on its own connection.
    assert_eq!(
        rows % (batch_size / lanes) as u64,
        0,
        "only whole lane batches are committed ({rows} rows)"
    );
    for upto in printed {
        let id = format!("cus_{upto:07}");
        let present: i64 = db
            .client()
            .query_one(
                "SELECT count(*) FROM stripe.customers WHERE id <= $1",
                &[&id],
            )
            .unwrap()
            .get(0);
        assert_eq!(
            present as u64,
            upto + 1,
            "a printed state (upto {upto}) is not backed by committed rows"
        );
    }
}

#[test]
fn a_lost_connection_is_retried() {
    let db = TestDb::new();
    let cat = catalog(vec![customers_stream()]);
    let mut w = Writer::start(
        &db,
        json!({"batch_size": 100, "flush_interval_ms": 100}),
        &cat,
    );
    w.send(&[
        record("customers", json!({"id": "cus_a", "_updated_at": 1})),
        state("customers", json!({"n": 1})),
    ]);
    assert!(w.next_message().is_some());
    // Kill the destination's server-side sessions; its next flush must reconnect.
    let killed: i64 = db
        .client()
        .query_one("SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'stripe-sync dest-postgres') t", &[])
        .unwrap()
        .get(0);
    assert!(killed >= 1);
    w.send(&[
        record("customers", json!({"id": "cus_b", "_updated_at": 1})),
        state("customers", json!({"n": 2})),
    ]);
    let m = w.next_message().expect("the state after the reconnect");
    assert_eq!(m["source_state"]["data"]["n"], 2, "{m}");
    drop(w.stdin.take());
    assert!(w.child.wait().unwrap().success());
    assert_eq!(db.count("stripe.customers"), 2);
}

#[test]
fn records_of_a_stream_missing_from_the_catalog_are_reported() {
    let db = TestDb::new();
    let out = write(
        &db,
        json!({}),
        &catalog(vec![customers_stream()]),
        &[
            record("ghosts", json!({"id": "g1"})),
            record("customers", json!({"id": "c1", "_updated_at": 1})),
            state("customers", json!({})),
        ],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let status = &out.of_type("stream_status")[0];
    assert_eq!(status["stream"], "ghosts");
    assert!(
        status["error"]
            .as_str()
            .unwrap()
            .contains("not in the catalog")
    );
    assert_eq!(out.of_type("source_state").len(), 1);
}

#[test]
fn secrets_in_the_url_never_reach_the_output() {
    let out = Bin::new("dest-postgres")
        .args(["check", "--log-level", "debug"])
        .json(
            "config",
            &json!({"url": "postgres://someone:TopSecretPassw0rd@127.0.0.1:1/x?connect_timeout=1"}),
        )
        .run();
    assert!(
        !out.stdout.contains("TopSecretPassw0rd") && !out.stderr.contains("TopSecretPassw0rd"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    // It got as far as trying: the failure names the server, without the password.
    let status = &out.of_type("connection_status")[0];
    assert_eq!(status["status"], "failed", "{status}");
    let message = status["message"].as_str().unwrap();
    assert!(message.contains("127.0.0.1:1/x"), "{message}");
}

#[test]
fn a_record_without_its_key_is_set_aside_and_its_stream_goes_on() {
    let db = TestDb::new();
    let mut other = customers_stream();
    other["name"] = json!("products");
    let cat = catalog(vec![customers_stream(), other]);
    let lines = vec![
        record(
            "customers",
            json!({"email": "no id here", "_updated_at": 1}),
        ),
        record("products", json!({"id": "p1", "_updated_at": 1})),
        state("products", json!({"n": 1})),
        record("customers", json!({"id": "c2", "_updated_at": 1})),
        state("customers", json!({"n": 2})),
    ];
    let out = write(&db, json!({}), &cat, &lines);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.of_type("stream_status").is_empty(), "{}", out.stdout);
    let warnings: Vec<String> = out
        .of_type("log")
        .iter()
        .map(|l| l["message"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        warnings.iter().any(|w| w.contains("line 1")
            && w.contains("\"id\"")
            && w.contains("_rejected_records")),
        "{warnings:?}"
    );
    let states = out.of_type("source_state");
    let customers = states.iter().find(|s| s["stream"] == "customers").unwrap();
    assert_eq!(
        customers["destination_stats"],
        json!({"committed": 1, "rejected": 1})
    );
    assert_eq!(db.count("stripe.products"), 1);
    assert_eq!(db.count("stripe.customers"), 1);
    let kept = rejected(&db);
    assert_eq!(kept.len(), 1);
    assert_eq!((kept[0].0.as_str(), kept[0].1), ("customers", 1));
    assert_eq!(
        serde_json::from_slice::<Value>(&kept[0].4).unwrap(),
        json!({"email": "no id here", "_updated_at": 1})
    );
}

#[test]
fn a_record_postgres_cannot_index_or_hold_is_set_aside_not_wedging_its_stream() {
    let db = TestDb::new();
    let cat = catalog(vec![customers_stream()]);
    let huge_key = "k".repeat(3_000);
    let lines = vec![
        record(
            "customers",
            json!({"id": "c1", "meta": {"n": "NUMBER"}, "_updated_at": 1}),
        )
        .replace("\"NUMBER\"", "1e999999"),
        record("customers", json!({"id": "c2", "_updated_at": 1})),
        record("customers", json!({"id": huge_key, "_updated_at": 1})),
        record(
            "customers",
            json!({"id": "c4", "fine": "NUMBER", "_updated_at": 1}),
        )
        .replace("\"NUMBER\"", "-1.5e-300"),
        state("customers", json!({"n": 4})),
    ];
    // Twice: the second time the rows merge into a table that has keys.
    for round in 0..2 {
        let out = write(&db, json!({}), &cat, &lines);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert!(out.of_type("stream_status").is_empty(), "{}", out.stdout);
        let states = out.of_type("source_state");
        assert_eq!(
            states[0]["destination_stats"],
            json!({"committed": 2, "rejected": 2}),
            "round {round}"
        );
    }
    assert_eq!(db.count("stripe.customers"), 2);
    let kept = rejected(&db);
    // Each round kept both, by line.
    let reasons: Vec<(i64, String)> = kept.iter().map(|r| (r.1, r.3.clone())).collect();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert!(
        reasons[0].0 == 1 && reasons[0].1.contains("1e999999") && reasons[0].1.contains("meta"),
        "{reasons:?}"
    );
    assert!(
        reasons[2].0 == 3 && reasons[2].1.contains("3000 bytes"),
        "{reasons:?}"
    );
}

#[test]
fn a_first_load_goes_straight_in_and_falls_back_to_merging_when_keys_repeat() {
    let db = TestDb::new();
    let cat = catalog(vec![customers_stream()]);
    let lines = vec![
        // Batch 1: new keys, copied straight into the empty table.
        record(
            "customers",
            json!({"id": "c1", "email": "v1", "_updated_at": 10}),
        ),
        record(
            "customers",
            json!({"id": "c2", "email": "first", "_updated_at": 10}),
        ),
        // Batch 2: an existing key: the COPY is refused, the batch is merged.
        record(
            "customers",
            json!({"id": "c1", "email": "v2", "_updated_at": 20}),
        ),
        record(
            "customers",
            json!({"id": "c3", "email": "new", "_updated_at": 10}),
        ),
        // Batch 3: merged too, and its stale version loses.
        record(
            "customers",
            json!({"id": "c1", "email": "v0 (stale)", "_updated_at": 5}),
        ),
        record(
            "customers",
            json!({"id": "c4", "email": "new", "_updated_at": 10}),
        ),
        state("customers", json!({"n": 6})),
    ];
    let out = write(&db, json!({"batch_size": 2}), &cat, &lines);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        out.of_type("source_state")[0]["destination_stats"]["committed"],
        6
    );
    let rows: Vec<(String, String)> =
        query(&db, "SELECT id, email FROM stripe.customers ORDER BY id")
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
    assert_eq!(
        rows,
        vec![
            ("c1".into(), "v2".into()),
            ("c2".into(), "first".into()),
            ("c3".into(), "new".into()),
            ("c4".into(), "new".into())
        ]
    );
}

fn customers(keys: std::ops::Range<usize>, version: i64) -> Vec<String> {
    keys.map(|i| {
        record(
            "customers",
            json!({"id": format!("cus_{i:06}"), "email": format!("{i}@v{version}.example"), "balance": i, "_updated_at": 1_700_000_000 + version}),
        )
    })
    .collect()
}

/// Counters of the target table once the writer's sessions have reported them (a session's
/// statistics reach `pg_stat_user_tables` when it ends).
fn table_stats(db: &TestDb, settled: impl Fn(i64, i64) -> bool) -> (i64, i64, i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let row = &query(
            db,
            "SELECT seq_scan, n_tup_upd, n_tup_ins FROM pg_stat_user_tables WHERE relid = 'stripe.customers'::regclass",
        )[0];
        let stats: (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
        if settled(stats.1, stats.2) || Instant::now() > deadline {
            return stats;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_merge_probes_the_key_index_instead_of_reading_the_whole_table() {
    let db = TestDb::new();
    let cat = catalog(vec![customers_stream()]);
    write_ok(&db, json!({}), &cat, &customers(0..5000, 0));
    query(&db, "ANALYZE stripe.customers");
    let (scans_before, _, _) = table_stats(&db, |_, inserted| inserted >= 5000);
    // 1,000 newer versions of stored rows and 50 new keys, in batches of 250 on one connection:
    // without a fixed plan, Postgres hash-joins each batch against a seq scan of the table.
    let mut lines = customers(0..1000, 1);
    lines.extend(customers(5000..5050, 1));
    write_ok(
        &db,
        json!({"batch_size": 250, "connections_per_stream": 1}),
        &cat,
        &lines,
    );
    let (scans_after, updated, inserted) =
        table_stats(&db, |updated, inserted| updated >= 1000 && inserted >= 5050);
    assert_eq!((updated, inserted), (1000, 5050));
    // One scan is the writer's check, at start, of whether the table holds any row.
    assert!(
        scans_after - scans_before <= 1,
        "{} sequential scans of the target for 5 batches",
        scans_after - scans_before
    );
    let emails: i64 = query(
        &db,
        "SELECT count(*) FROM stripe.customers WHERE email LIKE '%@v1.example'",
    )[0]
    .get(0);
    assert_eq!(emails, 1050);
}

#[test]
fn a_resync_of_unchanged_records_leaves_their_rows_untouched_not_even_locked() {
    let db = TestDb::new();
    let cat = catalog(vec![customers_stream()]);
    let lines = customers(0..300, 0);
    write_ok(&db, json!({}), &cat, &lines);
    let versions = |db: &TestDb| -> Vec<(String, String)> {
        query(
            db,
            "SELECT xmin::text, xmax::text FROM stripe.customers ORDER BY id",
        )
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
    };
    let before = versions(&db);
    assert!(before.iter().all(|(_, xmax)| xmax == "0"));
    // The same records again, and once more mixed with new keys (the insert path runs too).
    write_ok(&db, json!({}), &cat, &lines);
    let mut mixed = lines.clone();
    mixed.extend(customers(300..310, 0));
    write_ok(&db, json!({}), &cat, &mixed);
    let after = versions(&db);
    assert_eq!(
        after[..300],
        before[..],
        "an unchanged row keeps its version and is never locked (a lock is written to the WAL)"
    );
    assert_eq!(after.len(), 310);
}

#[test]
fn a_batch_larger_than_one_copy_piece_arrives_whole() {
    let db = TestDb::new();
    let cat = catalog(vec![customers_stream()]);
    // About 3 MiB in one batch, sent to Postgres in 1 MiB pieces; first load, then updates.
    let padding = "x".repeat(1500);
    for version in [0, 1] {
        let lines: Vec<String> = (0..2000)
            .map(|i| {
                record(
                    "customers",
                    json!({"id": format!("cus_{i:05}"), "email": format!("{i}-{version}-{padding}"), "_updated_at": 1_700_000_000 + version}),
                )
            })
            .collect();
        write_ok(
            &db,
            json!({"batch_size": 5000, "connections_per_stream": 1}),
            &cat,
            &lines,
        );
        let row = &query(
            &db,
            &format!(
                "SELECT count(*), sum(length(email))::bigint FROM stripe.customers WHERE email LIKE '%-{version}-%'"
            ),
        )[0];
        let (rows, length): (i64, i64) = (row.get(0), row.get(1));
        let expected: i64 = (0..2000)
            .map(|i| format!("{i}-{version}-{padding}").len() as i64)
            .sum();
        assert_eq!((rows, length), (2000, expected), "version {version}");
    }
}

#[test]
fn a_stream_named_by_its_object_takes_records_under_either_name() {
    // A hand-written catalog names the Stripe stream by its object, as the reference's docs do:
    // the table is ours (customers), and records named either way land in it.
    let db = TestDb::new();
    let cat = json!({"streams": [{"stream": {"name": "customer", "primary_key": [["id"]]},
        "sync_mode": "full_refresh", "destination_sync_mode": "append"}]});
    let out = write_ok(
        &db,
        json!({}),
        &cat,
        &[
            record("customers", json!({"id": "cus_a"})),
            record("customer", json!({"id": "cus_b"})),
            state("customer", json!({"n": 2})),
        ],
    );
    assert!(out.of_type("stream_status").is_empty(), "{}", out.stdout);
    let ids: Vec<String> = query(&db, "SELECT id FROM stripe.customers ORDER BY id")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, ["cus_a", "cus_b"]);
    let acked = out.of_type("source_state");
    assert_eq!(acked.len(), 1, "{}", out.stdout);
    assert_eq!(
        acked[0]["destination_stats"]["committed"], 2,
        "{}",
        out.stdout
    );
}

#[test]
fn only_the_last_twenty_ended_listings_of_a_stream_are_kept() {
    let db = TestDb::new();
    let cat = catalog(vec![customers_stream()]);
    let fence = |id: usize, phase: &str| {
        json!({"type": "source_state", "source_state": {"state_type": "stream", "stream": "customers",
            "data": {"n": id}, "listing": {"id": format!("{id:04}"), "phase": phase, "scope": {}, "unlisted": {}}}})
        .to_string()
    };
    let mut lines = Vec::new();
    for id in 0..25 {
        lines.push(fence(id, "started"));
        lines.push(record(
            "customers",
            json!({"id": "cus_1", "email": "a", "_updated_at": id}),
        ));
        lines.push(fence(id, "complete"));
    }
    write_ok(&db, json!({}), &cat, &lines);
    let kept: Vec<String> = query(
        &db,
        "SELECT listing FROM stripe._listings WHERE stream = 'customers' ORDER BY listing",
    )
    .iter()
    .map(|r| r.get(0))
    .collect();
    // The 25th start forgot the oldest ended ones; it then ended too.
    let expected: Vec<String> = (4..25).map(|id| format!("{id:04}")).collect();
    assert_eq!(kept, expected);
    let seen: i64 = query(&db, "SELECT count(*) FROM stripe._listing_seen")[0].get(0);
    assert_eq!(seen, 0, "an ended listing's keys are forgotten");
}

#[test]
fn listings_of_one_stream_in_two_accounts_at_once_each_keep_and_mark_only_their_own_rows() {
    let db = TestDb::new();
    let cat = catalog(vec![customers_stream()]);
    let fence = |account: &str, phase: &str| {
        json!({"type": "source_state", "source_state": {"state_type": "stream", "stream": "customers",
            "data": {"phase": phase}, "listing": {"id": format!("l_{account}"), "phase": phase,
            "scope": {"_account_id": account}, "unlisted": {}}}})
        .to_string()
    };
    let row = |id: &str, account: &str, version: i64| {
        record(
            "customers",
            json!({"id": id, "_account_id": account, "email": id, "_updated_at": version}),
        )
    };
    // Rows of both accounts already there, so both listings compare.
    write_ok(
        &db,
        json!({}),
        &cat,
        &[
            row("a1", "acct_a", 1),
            row("a2", "acct_a", 1),
            row("b1", "acct_b", 1),
            row("b2", "acct_b", 1),
        ],
    );
    // Both accounts list again at once; a2 and b2 are gone.
    write_ok(
        &db,
        json!({}),
        &cat,
        &[
            fence("acct_a", "started"),
            fence("acct_b", "started"),
            row("a1", "acct_a", 2),
            row("b1", "acct_b", 2),
        ],
    );
    let seen: Vec<(String, String)> = query(
        &db,
        "SELECT listing, key->>0 FROM stripe._listing_seen ORDER BY 1, 2",
    )
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();
    assert_eq!(
        seen,
        [
            ("l_acct_a".to_owned(), "a1".to_owned()),
            ("l_acct_b".to_owned(), "b1".to_owned())
        ],
        "each listing keeps the keys of its own account only"
    );
    // Half of each account's rows are gone: more than the default share a listing may mark.
    write_ok(
        &db,
        json!({"sweep_max_share": 1.0}),
        &cat,
        &[fence("acct_a", "complete"), fence("acct_b", "complete")],
    );
    let deleted: Vec<(String, bool)> =
        query(&db, "SELECT id, _deleted FROM stripe.customers ORDER BY id")
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
    assert_eq!(
        deleted,
        [
            ("a1".to_owned(), false),
            ("a2".to_owned(), true),
            ("b1".to_owned(), false),
            ("b2".to_owned(), true)
        ]
    );
}

#[test]
fn large_raw_data_is_stored_whole_and_compressed_with_lz4_where_the_server_has_it() {
    let db = TestDb::new();
    let cat = catalog(vec![customers_stream()]);
    let email = |version: &str| format!("{version} {}", "a long note ".repeat(600));
    let row = |id: &str, version: i64, text: &str| {
        record(
            "customers",
            json!({"id": id, "email": text, "_updated_at": version}),
        )
    };
    // The first load is copied straight in; the second (a table with rows) goes through the
    // staging table and the merge, which reads each row's raw data out of it once.
    write_ok(&db, json!({}), &cat, &[row("cus_1", 100, &email("v1"))]);
    write_ok(
        &db,
        json!({}),
        &cat,
        &[
            row("cus_1", 200, &email("v2")),
            row("cus_2", 200, &email("new")),
        ],
    );
    let rows = query(
        &db,
        "SELECT id, email, _raw_data->>'email', pg_column_compression(_raw_data) \
         FROM stripe.customers ORDER BY id",
    );
    let lz4: bool = query(
        &db,
        "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'",
    )
    .first()
    .is_some_and(|r| r.get(0));
    let expected_method = if lz4 { "lz4" } else { "pglz" };
    assert_eq!(rows.len(), 2);
    for (row, version) in rows.iter().zip(["v2", "new"]) {
        let column: String = row.get(1);
        let raw: String = row.get(2);
        let method: Option<String> = row.get(3);
        assert_eq!(column, email(version), "the typed column, {version}");
        assert_eq!(raw, email(version), "the raw data, {version}");
        assert_eq!(method.as_deref(), Some(expected_method), "{version}");
    }
}
