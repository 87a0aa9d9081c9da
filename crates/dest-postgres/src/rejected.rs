//! Records a table cannot hold faithfully (see [`crate::record`]) are kept verbatim in the
//! schema's `_rejected_records` table, in the same transaction as the batch they came with, and
//! reported: nothing is dropped silently, nothing is altered.

use crate::ident::qualified;

pub(crate) const TABLE: &str = "_rejected_records";

/// One set-aside record.
#[derive(Debug, Clone)]
pub(crate) struct RejectedRecord {
    pub stream: String,
    /// The input line it came on.
    pub line: u64,
    pub key: Option<String>,
    pub reason: String,
    /// The record's `data` exactly as received (bytes: it may hold what text cannot).
    pub data: Vec<u8>,
}

pub(crate) fn create_sql(schema: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (stream text NOT NULL, line bigint NOT NULL, key text, \
         reason text NOT NULL, data bytea NOT NULL, rejected_at timestamptz NOT NULL DEFAULT now())",
        qualified(schema, TABLE)
    )
}

pub(crate) fn insert_sql(schema: &str) -> String {
    format!(
        "INSERT INTO {} (stream, line, key, reason, data) \
         SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bytea[])",
        qualified(schema, TABLE)
    )
}

/// Inserts a batch's rejected records within the caller's transaction.
pub(crate) async fn insert(
    tx: &deadpool_postgres::Transaction<'_>,
    sql: &str,
    records: &[RejectedRecord],
) -> Result<u64, tokio_postgres::Error> {
    if records.is_empty() {
        return Ok(0);
    }
    let streams: Vec<&str> = records.iter().map(|r| r.stream.as_str()).collect();
    let lines: Vec<i64> = records.iter().map(|r| r.line as i64).collect();
    let keys: Vec<Option<&str>> = records.iter().map(|r| r.key.as_deref()).collect();
    let reasons: Vec<&str> = records.iter().map(|r| r.reason.as_str()).collect();
    let data: Vec<&[u8]> = records.iter().map(|r| r.data.as_slice()).collect();
    tx.execute(sql, &[&streams, &lines, &keys, &reasons, &data])
        .await
}
