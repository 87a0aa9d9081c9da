//! The SQL of one flush: create the session's staging table, COPY into it, merge into the
//! target with the stale-write gate, in one transaction; or, while a stream only brings new
//! keys (a first load), COPY straight into the target.

use crate::config::DeleteMode;
use crate::ident::{quote, short_hash};
use crate::table::{DELETED, RAW_DATA, SYNCED_AT, TableModel, UPDATED_AT};

/// The statements for one stream, built once.
#[derive(Debug, Clone)]
pub struct MergeSql {
    pub create_staging: String,
    pub copy: String,
    /// COPY of the same rows straight into the target.
    pub copy_direct: String,
    /// Whether the target holds any row.
    pub target_has_rows: String,
    /// Merge when the batch has no duplicate keys.
    pub merge: String,
    /// Merge reducing duplicate keys to the newest version.
    pub merge_dedupe: String,
    /// Keeps the records set aside (see [`crate::rejected`]).
    pub insert_rejected: String,
}

impl MergeSql {
    pub fn new(schema: &str, table: &TableModel, delete_mode: DeleteMode) -> MergeSql {
        let staging = format!(
            "pg_temp.{}",
            quote(&format!(
                "_stage_{}",
                short_hash(&format!("{schema}.{}", table.table))
            ))
        );
        let target = crate::ident::qualified(schema, &table.table);
        let keys: Vec<String> = table.keys.iter().map(|k| quote(&k.column)).collect();
        let key_defs: Vec<String> = table
            .keys
            .iter()
            .map(|k| format!("{} {}", quote(&k.column), k.pg_type.sql()))
            .collect();
        let (raw, updated, synced, deleted) = (
            quote(RAW_DATA),
            quote(UPDATED_AT),
            quote(SYNCED_AT),
            quote(DELETED),
        );
        let mut staging_cols = key_defs;
        staging_cols.extend([
            format!("{raw} jsonb"),
            format!("{updated} timestamptz"),
            format!("{deleted} boolean"),
        ]);
        let create_staging = format!(
            "CREATE TEMP TABLE IF NOT EXISTS {staging} ({}) ON COMMIT DELETE ROWS",
            staging_cols.join(", ")
        );
        let mut copy_cols = keys.clone();
        copy_cols.extend([raw.clone(), updated.clone(), deleted.clone()]);
        let copy = format!(
            "COPY {staging} ({}) FROM STDIN (FORMAT binary)",
            copy_cols.join(", ")
        );
        let copy_direct = format!(
            "COPY {target} ({}) FROM STDIN (FORMAT binary)",
            copy_cols.join(", ")
        );
        let target_has_rows = format!("SELECT EXISTS (SELECT 1 FROM {target})");

        let mut target_cols: Vec<String> = keys.clone();
        target_cols.extend([
            raw.clone(),
            updated.clone(),
            synced.clone(),
            deleted.clone(),
        ]);
        let mut select_cols: Vec<String> = keys.iter().map(|k| format!("s.{k}")).collect();
        select_cols.extend([
            format!("s.{raw}"),
            format!("s.{updated}"),
            "now()".to_owned(),
            format!("s.{deleted}"),
        ]);
        let source = |dedupe: bool| {
            if dedupe && !keys.is_empty() {
                // What applying the rows one by one gives: the newest version of each key, the
                // last one written among equals; an unversioned row only when none has a version.
                format!(
                    "(SELECT DISTINCT ON ({k}) * FROM {staging} ORDER BY {k}, {updated} DESC NULLS LAST, ctid DESC)",
                    k = keys.join(", ")
                )
            } else {
                staging.clone()
            }
        };
        // Incoming wins when at least as new. A row without a version is replaced by anything;
        // a record without a version never replaces a row that has one.
        let newer = format!("(t.{updated} IS NULL OR EXCLUDED.{updated} >= t.{updated})");
        let build = |dedupe: bool| {
            let src = source(dedupe);
            if keys.is_empty() {
                return format!(
                    "INSERT INTO {target} ({}) SELECT {} FROM {src} s",
                    target_cols.join(", "),
                    select_cols.join(", ")
                );
            }
            let set: Vec<String> = [&raw, &updated, &synced, &deleted]
                .iter()
                .map(|c| format!("{c} = EXCLUDED.{c}"))
                .collect();
            let upsert_tail = format!(
                "ON CONFLICT ({}) DO UPDATE SET {} WHERE {newer}",
                keys.join(", "),
                set.join(", ")
            );
            match delete_mode {
                DeleteMode::Soft => format!(
                    "INSERT INTO {target} AS t ({}) SELECT {} FROM {src} s {upsert_tail}",
                    target_cols.join(", "),
                    select_cols.join(", ")
                ),
                DeleteMode::Hard => {
                    let join: Vec<String> = keys.iter().map(|k| format!("t.{k} = s.{k}")).collect();
                    let stale_guard =
                        format!("(t.{updated} IS NULL OR s.{updated} >= t.{updated})");
                    format!(
                        "WITH batch AS MATERIALIZED (SELECT * FROM {src} b), \
                         removed AS (DELETE FROM {target} t USING batch s WHERE s.{deleted} AND {} AND {stale_guard}) \
                         INSERT INTO {target} AS t ({}) SELECT {} FROM batch s WHERE NOT s.{deleted} {upsert_tail}",
                        join.join(" AND "),
                        target_cols.join(", "),
                        select_cols.join(", ")
                    )
                }
            }
        };
        MergeSql {
            create_staging,
            copy,
            copy_direct,
            target_has_rows,
            merge: build(false),
            merge_dedupe: build(true),
            insert_rejected: crate::rejected::insert_sql(schema),
        }
    }
}
