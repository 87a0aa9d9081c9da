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
    /// Whether the target holds any row or, with hard deletes, remembers a deletion: either
    /// way a batch must merge (a copy straight in would bring a deleted object back).
    pub target_has_rows: String,
    /// Merge when the batch has no duplicate keys.
    pub merge: String,
    /// Merge reducing duplicate keys to the newest version.
    pub merge_dedupe: String,
    /// Keeps the records set aside (see [`crate::rejected`]).
    pub insert_rejected: String,
}

/// The quoted names one stream's statements use.
struct Names {
    target: String,
    staging: String,
    keys: Vec<String>,
    raw: String,
    updated: String,
    synced: String,
    deleted: String,
    /// The schema's `_tombstones` table.
    tombstones: String,
    /// The stream's name as a literal.
    stream: String,
}

impl Names {
    fn of(schema: &str, table: &TableModel) -> Names {
        Names {
            target: crate::ident::qualified(schema, &table.table),
            staging: format!(
                "pg_temp.{}",
                quote(&format!(
                    "_stage_{}",
                    short_hash(&format!("{schema}.{}", table.table))
                ))
            ),
            keys: table.keys.iter().map(|k| quote(&k.column)).collect(),
            raw: quote(RAW_DATA),
            updated: quote(UPDATED_AT),
            synced: quote(SYNCED_AT),
            deleted: quote(DELETED),
            tombstones: crate::ident::qualified(schema, crate::tombstones::TABLE),
            stream: crate::ident::literal(&table.stream),
        }
    }

    /// The columns a batch loads: keys, raw data, version, tombstone flag.
    fn loaded(&self) -> String {
        let mut columns = self.keys.clone();
        columns.extend([self.raw.clone(), self.updated.clone(), self.deleted.clone()]);
        columns.join(", ")
    }

    /// The stale-write gate: the incoming row (alias `incoming`) wins over the stored one (`t`)
    /// when at least as new, except that a deletion is undone by no version of its own second
    /// (deletion is final in Stripe; its times are whole seconds). A row without a version is
    /// replaced by anything; a record without a version never replaces a row that has one.
    fn newer(&self, incoming: &str) -> String {
        format!(
            "(t.{u} IS NULL OR {incoming}.{u} > t.{u} OR ({incoming}.{u} = t.{u} AND ({incoming}.{d} OR NOT t.{d})))",
            u = self.updated,
            d = self.deleted
        )
    }

    /// The rows of the batch: the staging table, or for a batch with repeated keys what
    /// applying them one by one would leave (the newest; among equals a deletion, else the last
    /// written; an unversioned one only when none has a version).
    fn source(&self, dedupe: bool) -> String {
        if !dedupe || self.keys.is_empty() {
            return self.staging.clone();
        }
        format!(
            "(SELECT DISTINCT ON ({k}) * FROM {staging} ORDER BY {k}, {updated} DESC NULLS LAST, {deleted} DESC, ctid DESC)",
            k = self.keys.join(", "),
            staging = self.staging,
            updated = self.updated,
            deleted = self.deleted
        )
    }

    /// `INSERT … ON CONFLICT DO UPDATE` from `source` (alias `s`). A row that would not change
    /// is left alone: no new tuple, no WAL (`_synced_at` says when a row last changed).
    fn upsert(&self, source: &str) -> String {
        let mut target_cols = self.keys.clone();
        target_cols.extend([
            self.raw.clone(),
            self.updated.clone(),
            self.synced.clone(),
            self.deleted.clone(),
        ]);
        let mut select_cols: Vec<String> = self.keys.iter().map(|k| format!("s.{k}")).collect();
        select_cols.extend([
            format!("s.{}", self.raw),
            format!("s.{}", self.updated),
            "now()".to_owned(),
            format!("s.{}", self.deleted),
        ]);
        let insert = format!(
            "INSERT INTO {} AS t ({}) SELECT {} FROM {source} s",
            self.target,
            target_cols.join(", "),
            select_cols.join(", ")
        );
        if self.keys.is_empty() {
            return insert;
        }
        let set: Vec<String> = [&self.raw, &self.updated, &self.synced, &self.deleted]
            .iter()
            .map(|c| format!("{c} = EXCLUDED.{c}"))
            .collect();
        let changed = format!(
            "(t.{r} IS DISTINCT FROM EXCLUDED.{r} OR t.{d} IS DISTINCT FROM EXCLUDED.{d} OR t.{u} IS DISTINCT FROM EXCLUDED.{u})",
            r = self.raw,
            d = self.deleted,
            u = self.updated
        );
        format!(
            "{insert} ON CONFLICT ({}) DO UPDATE SET {} WHERE {} AND {changed}",
            self.keys.join(", "),
            set.join(", "),
            self.newer("EXCLUDED")
        )
    }

    /// A key as text, for `_tombstones` (`alias` the row's alias).
    fn key_text(&self, alias: &str) -> String {
        let keys: Vec<String> = self.keys.iter().map(|k| format!("{alias}.{k}")).collect();
        format!("ROW({})::text", keys.join(", "))
    }

    /// The merge of a batch: hard deletes first (tombstones delete the rows they are newer
    /// than and are remembered in `_tombstones`), then the upsert of the rest, except versions
    /// no newer than a remembered deletion.
    fn merge(&self, delete_mode: DeleteMode, dedupe: bool) -> String {
        let source = self.source(dedupe);
        match delete_mode {
            DeleteMode::Soft => self.upsert(&source),
            DeleteMode::Hard if self.keys.is_empty() => self.upsert(&source),
            DeleteMode::Hard => {
                let join: Vec<String> =
                    self.keys.iter().map(|k| format!("t.{k} = s.{k}")).collect();
                let live = format!(
                    "(SELECT * FROM batch b WHERE NOT b.{d} AND NOT EXISTS (SELECT 1 FROM {tomb} tb \
                     WHERE tb.stream = {stream} AND tb.key = {key} AND tb.version >= b.{u}))",
                    d = self.deleted,
                    tomb = self.tombstones,
                    stream = self.stream,
                    key = self.key_text("b"),
                    u = self.updated
                );
                format!(
                    "WITH batch AS MATERIALIZED (SELECT * FROM {source} b), \
                     removed AS (DELETE FROM {target} t USING batch s WHERE s.{d} AND {join} AND {newer}), \
                     remembered AS (INSERT INTO {tomb} AS tb (stream, key, version) \
                     SELECT DISTINCT ON ({key}) {stream}, {key}, s.{u} FROM batch s WHERE s.{d} \
                     ORDER BY {key}, s.{u} DESC NULLS LAST \
                     ON CONFLICT (stream, key) DO UPDATE SET version = GREATEST(tb.version, EXCLUDED.version), deleted_at = now()) \
                     {upsert}",
                    target = self.target,
                    d = self.deleted,
                    join = join.join(" AND "),
                    newer = self.newer("s"),
                    tomb = self.tombstones,
                    stream = self.stream,
                    key = self.key_text("s"),
                    u = self.updated,
                    upsert = self.upsert(&live)
                )
            }
        }
    }
}

impl MergeSql {
    pub fn new(schema: &str, table: &TableModel, delete_mode: DeleteMode) -> MergeSql {
        let names = Names::of(schema, table);
        let mut staging_cols: Vec<String> = table
            .keys
            .iter()
            .map(|k| format!("{} {}", quote(&k.column), k.pg_type.sql()))
            .collect();
        staging_cols.extend([
            format!("{} jsonb", names.raw),
            format!("{} timestamptz", names.updated),
            format!("{} boolean", names.deleted),
        ]);
        MergeSql {
            create_staging: format!(
                "CREATE TEMP TABLE IF NOT EXISTS {} ({}) ON COMMIT DELETE ROWS",
                names.staging,
                staging_cols.join(", ")
            ),
            copy: format!(
                "COPY {} ({}) FROM STDIN (FORMAT binary)",
                names.staging,
                names.loaded()
            ),
            copy_direct: format!(
                "COPY {} ({}) FROM STDIN (FORMAT binary)",
                names.target,
                names.loaded()
            ),
            target_has_rows: match delete_mode {
                DeleteMode::Soft => format!("SELECT EXISTS (SELECT 1 FROM {})", names.target),
                DeleteMode::Hard => format!(
                    "SELECT EXISTS (SELECT 1 FROM {}) OR EXISTS (SELECT 1 FROM {} WHERE stream = {})",
                    names.target, names.tombstones, names.stream
                ),
            },
            merge: names.merge(delete_mode, false),
            merge_dedupe: names.merge(delete_mode, true),
            insert_rejected: crate::rejected::insert_sql(schema),
        }
    }
}
