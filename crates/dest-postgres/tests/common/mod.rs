//! Helpers shared by the tests that run `dest-postgres` against a real Postgres.

#![allow(dead_code)]

use serde_json::{Value, json};
use test_support::{Bin, Finished, TestDb};

pub fn config(db: &TestDb, extra: Value) -> Value {
    let mut c = json!({"url": db.url(), "schema": "stripe"});
    if let (Value::Object(c), Value::Object(e)) = (&mut c, extra) {
        c.extend(e);
    }
    c
}

pub fn customers_stream() -> Value {
    json!({
        "name": "customers",
        "primary_key": [["id"]],
        "newer_than_field": "_updated_at",
        "json_schema": {"type": "object", "properties": {
            "id": {"type": "string"},
            "email": {"type": ["string", "null"]},
            "balance": {"type": "integer"},
            "_updated_at": {"type": "integer"}
        }}
    })
}

pub fn catalog(streams: Vec<Value>) -> Value {
    json!({"streams": streams})
}

pub fn record(stream: &str, data: Value) -> String {
    json!({"type": "record", "record": {"stream": stream, "data": data, "emitted_at": "2026-01-01T00:00:00.000Z"}}).to_string()
}

pub fn state(stream: &str, data: Value) -> String {
    json!({"type": "source_state", "source_state": {"state_type": "stream", "stream": stream, "data": data}}).to_string()
}

pub fn global(data: Value) -> String {
    json!({"type": "source_state", "source_state": {"state_type": "global", "data": data}})
        .to_string()
}

pub fn write(db: &TestDb, extra: Value, catalog: &Value, lines: &[String]) -> Finished {
    Bin::new("dest-postgres")
        .arg("write")
        .json("config", &config(db, extra))
        .json("catalog", catalog)
        .stdin(lines.join("\n"))
        .run()
}

/// `write` that must succeed.
pub fn write_ok(db: &TestDb, extra: Value, catalog: &Value, lines: &[String]) -> Finished {
    let out = write(db, extra, catalog, lines);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    out
}

pub fn setup(db: &TestDb, extra: Value, catalog: &Value) -> Finished {
    Bin::new("dest-postgres")
        .arg("setup")
        .json("config", &config(db, extra))
        .json("catalog", catalog)
        .run()
}

pub fn query(db: &TestDb, sql: &str) -> Vec<postgres::Row> {
    db.client()
        .query(sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

pub fn teardown(db: &TestDb, extra: Value) -> Finished {
    Bin::new("dest-postgres")
        .arg("teardown")
        .json("config", &config(db, extra))
        .run()
}

/// One row of `_rejected_records`: (stream, line, key, reason, data).
pub type RejectedRow = (String, i64, Option<String>, String, Vec<u8>);

pub fn rejected(db: &TestDb) -> Vec<RejectedRow> {
    query(
        db,
        "SELECT stream, line, key, reason, data FROM stripe._rejected_records ORDER BY line",
    )
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
    .collect()
}
