//! The SQL of one flush: create the session's staging table, COPY into it, merge into the
//! target with the stale-write gate, in one transaction; or, while a stream only brings new
//! keys (a first load), COPY straight into the target.

use crate::config::DeleteMode;
use crate::ident::{quote, short_hash};
use crate::table::{DELETED, DELETED_REASON, RAW_DATA, SYNCED_AT, TableModel, UPDATED_AT};

/// The statements for one stream, built once.
#[derive(Debug, Clone)]
pub(crate) struct MergeSql {
    pub create_staging: String,
    pub copy: String,
    /// COPY of the same rows straight into the target.
    pub copy_direct: String,
    /// Whether the target holds any row or, with hard deletes, remembers a deletion: either
    /// way a batch must merge (a copy straight in would bring a deleted object back).
    pub target_has_rows: String,
    /// Merge when the batch has no duplicate keys.
    pub merge: Merge,
    /// Merge reducing duplicate keys to the newest version.
    pub merge_dedupe: Merge,
    /// Keeps the records set aside (see [`crate::rejected`]).
    pub insert_rejected: String,
    /// Records the staged rows' keys as seen by listing `$1` (see [`crate::listing`]): the
    /// start of the statement, which [`MergeSql::record_seen`] ends with the listing's scope.
    record_seen: String,
}

/// The statements that merge a staged batch into the target, run in this order in the
/// batch's transaction.
///
/// A plain `UPDATE` costs less than `INSERT … ON CONFLICT DO UPDATE`, which probes the index
/// for a conflict and then locks the row it finds, and that lock is written to the WAL and
/// dirties the page even when the row is left alone (`docs/benchmarks.md` has the
/// measurement). So stored rows are updated first, and only the batch's other rows go through
/// the insert.
#[derive(Debug, Clone)]
pub(crate) struct Merge {
    /// Hard deletes (with `DeleteMode::Hard`), then the update of the stored rows the batch's
    /// rows are newer than; `None` for a table without a key. Its row count says how many of
    /// the batch's rows it took.
    pub update: Option<String>,
    /// The batch's rows whose key is not stored, with `ON CONFLICT` and the same gate for a key
    /// that another writer stores meanwhile. Needless when the update took every row.
    pub insert: String,
}

/// Settings a merge's transaction runs with, to fix its plan. Each batch is small against its
/// table, and without statistics for the staging table the planner may otherwise hash-join,
/// reading the whole table once per batch instead of probing its key index once per row (a
/// test counts the scans). JIT compilation costs more than it saves on a batch.
pub(crate) const MERGE_PLAN_SETTINGS: &str =
    "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; SET LOCAL jit = off";

/// The quoted names one stream's statements use.
struct Names {
    target: String,
    staging: String,
    keys: Vec<String>,
    raw: String,
    updated: String,
    synced: String,
    deleted: String,
    deleted_reason: String,
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
            deleted_reason: quote(DELETED_REASON),
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
    /// (deletion is final in Stripe; its times are whole seconds) unless a listing inferred it
    /// (a row marked for missing from a listing comes back with the object). A row without a
    /// version is replaced by anything; a record without a version never replaces a row that
    /// has one.
    fn newer(&self, incoming: &str) -> String {
        format!(
            "(t.{u} IS NULL OR {incoming}.{u} > t.{u} OR ({incoming}.{u} = t.{u} AND ({incoming}.{d} OR NOT t.{d} OR t.{r} IS NOT NULL)))",
            u = self.updated,
            d = self.deleted,
            r = self.deleted_reason
        )
    }

    /// The rows of the batch: the staging table's, or for a batch with repeated keys what
    /// applying them one by one would leave (the newest; among equals a deletion, else the last
    /// written; an unversioned one only when none has a version).
    ///
    /// The raw data is read out of the staging table once per row (`|| '{}'`, the identity on
    /// an object, and every record's data is one): read as it is stored, compressed, each of
    /// the target's generated columns would decompress it again (docs/benchmarks.md, "the
    /// merge's raw data and lz4").
    fn source(&self, dedupe: bool) -> String {
        let mut columns = self.keys.clone();
        columns.extend([
            format!("{r} || '{{}}'::jsonb AS {r}", r = self.raw),
            self.updated.clone(),
            self.deleted.clone(),
        ]);
        let columns = columns.join(", ");
        if !dedupe || self.keys.is_empty() {
            return format!("(SELECT {columns} FROM {})", self.staging);
        }
        format!(
            "(SELECT DISTINCT ON ({k}) {columns} FROM {staging} ORDER BY {k}, {updated} DESC NULLS LAST, {deleted} DESC, ctid DESC)",
            k = self.keys.join(", "),
            staging = self.staging,
            updated = self.updated,
            deleted = self.deleted
        )
    }

    /// The columns a merge sets from `incoming`'s row; `_synced_at` says when a row last
    /// changed, and a row written from a record has no inferred deletion.
    fn assignments(&self, incoming: &str) -> String {
        format!(
            "{r} = {incoming}.{r}, {u} = {incoming}.{u}, {s} = now(), {d} = {incoming}.{d}, {why} = NULL",
            r = self.raw,
            u = self.updated,
            s = self.synced,
            d = self.deleted,
            why = self.deleted_reason
        )
    }

    /// Whether `incoming` differs from the stored row `t`: a row that would not change is left
    /// alone (no new tuple, no WAL). The version is compared first: it is the cheapest, and
    /// when a row did change it usually tells.
    fn changed(&self, incoming: &str) -> String {
        format!(
            "(t.{u} IS DISTINCT FROM {incoming}.{u} OR t.{d} IS DISTINCT FROM {incoming}.{d} OR t.{r} IS DISTINCT FROM {incoming}.{r})",
            r = self.raw,
            d = self.deleted,
            u = self.updated
        )
    }

    /// The key columns of `left` equal to those of `right`.
    fn same_key(&self, left: &str, right: &str) -> String {
        let join: Vec<String> = self
            .keys
            .iter()
            .map(|k| format!("{left}.{k} = {right}.{k}"))
            .collect();
        join.join(" AND ")
    }

    /// The insert of `source`'s rows (alias `s`) whose key is not stored. `with` holds the
    /// statement's `WITH` list, if any.
    fn insert(&self, with: &str, source: &str) -> String {
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
            "{with}INSERT INTO {} AS t ({}) SELECT {} FROM {source} s",
            self.target,
            target_cols.join(", "),
            select_cols.join(", ")
        );
        if self.keys.is_empty() {
            // Without a key every record is a new row (hard deletes need a key, see `merge`).
            return insert;
        }
        format!(
            "{insert} WHERE NOT EXISTS (SELECT 1 FROM {target} x WHERE {stored}) \
             ON CONFLICT ({keys}) DO UPDATE SET {set} WHERE {newer} AND {changed}",
            target = self.target,
            stored = self.same_key("x", "s"),
            keys = self.keys.join(", "),
            set = self.assignments("EXCLUDED"),
            newer = self.newer("EXCLUDED"),
            changed = self.changed("EXCLUDED"),
        )
    }

    /// The update of the stored rows that `source`'s rows (alias `s`) are newer than and
    /// differ from. `with` holds the statement's `WITH` list, if any.
    fn update(&self, with: &str, source: &str) -> String {
        format!(
            "{with}UPDATE {target} t SET {set} FROM {source} s WHERE {key} AND {newer} AND {changed}",
            target = self.target,
            set = self.assignments("s"),
            key = self.same_key("t", "s"),
            newer = self.newer("s"),
            changed = self.changed("s"),
        )
    }

    /// A key as text, for `_tombstones` (`alias` the row's alias).
    fn key_text(&self, alias: &str) -> String {
        let keys: Vec<String> = self.keys.iter().map(|k| format!("{alias}.{k}")).collect();
        format!("ROW({})::text", keys.join(", "))
    }

    /// The merge of a batch: hard deletes first (tombstones delete the rows they are newer
    /// than and are remembered in `_tombstones`), then the rest, except versions no newer than
    /// a remembered deletion.
    fn merge(&self, delete_mode: DeleteMode, dedupe: bool) -> Merge {
        let source = self.source(dedupe);
        if self.keys.is_empty() {
            return Merge {
                update: None,
                insert: self.insert("", &source),
            };
        }
        if delete_mode == DeleteMode::Soft {
            return Merge {
                update: Some(self.update("", &source)),
                insert: self.insert("", &source),
            };
        }
        let batch = format!("batch AS MATERIALIZED (SELECT * FROM {source} b)");
        // The batch's rows that are not deletions and are newer than any remembered deletion
        // of their key.
        let live = format!(
            "live AS MATERIALIZED (SELECT * FROM batch b WHERE NOT b.{d} AND NOT EXISTS (SELECT 1 FROM {tomb} tb \
             WHERE tb.stream = {stream} AND tb.key = {key} AND tb.version >= b.{u}))",
            d = self.deleted,
            tomb = self.tombstones,
            stream = self.stream,
            key = self.key_text("b"),
            u = self.updated
        );
        let deletions = format!(
            "removed AS (DELETE FROM {target} t USING batch s WHERE s.{d} AND {join} AND {newer}), \
             remembered AS (INSERT INTO {tomb} AS tb (stream, key, version) \
             SELECT DISTINCT ON ({key}) {stream}, {key}, s.{u} FROM batch s WHERE s.{d} \
             ORDER BY {key}, s.{u} DESC NULLS LAST \
             ON CONFLICT (stream, key) DO UPDATE SET version = GREATEST(tb.version, EXCLUDED.version), deleted_at = now())",
            target = self.target,
            d = self.deleted,
            join = self.same_key("t", "s"),
            newer = self.newer("s"),
            tomb = self.tombstones,
            stream = self.stream,
            key = self.key_text("s"),
            u = self.updated,
        );
        Merge {
            update: Some(self.update(&format!("WITH {batch}, {deletions}, {live} "), "live")),
            insert: self.insert(&format!("WITH {batch}, {live} "), "live"),
        }
    }
}

impl MergeSql {
    /// The statement recording the keys of the staged rows that `scope` (a condition on alias
    /// `t`) holds true of as seen by listing `$1`.
    pub(crate) fn record_seen(&self, scope: &str) -> String {
        format!("{}{scope} ON CONFLICT DO NOTHING", self.record_seen)
    }

    pub(crate) fn new(schema: &str, table: &TableModel, delete_mode: DeleteMode) -> MergeSql {
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
            record_seen: format!(
                "INSERT INTO {} (stream, listing, key) SELECT {}, $1, {} FROM {} t WHERE ",
                crate::ident::qualified(schema, crate::listing::SEEN),
                names.stream,
                crate::listing::key_of(table, "t"),
                names.staging
            ),
        }
    }
}
