//! Setup and teardown: the schema, one table per stream, schema evolution.

use std::collections::HashMap;

use deadpool_postgres::{Client, Transaction};

pub(crate) use crate::ddl_error::{DdlError, is_system_schema};
use crate::ddl_error::{MARK, pg_err};
use crate::ident::{literal, qualified, quote};
use crate::registry;
use crate::table::TableModel;

/// Tables whose comment ends so have the current column definitions.
const COLUMNS_VERSION: &str = "columns v2";

/// A stream's table as setup left it.
#[derive(Debug)]
pub(crate) struct StreamTable {
    pub stream: String,
    pub table: String,
    /// Set when setup created the table ([`crate::registry`]).
    pub generation: String,
}

/// Whether a table holds any row (a scan that stops at the first). A table another session
/// holds locked (a `LOCK TABLE`, a long `ALTER`) is taken to hold rows rather than waited for:
/// the answer only serves to notice a table emptied behind a checkpoint's back.
pub(crate) async fn holds_rows(
    client: &mut Client,
    schema: &str,
    table: &str,
) -> Result<bool, DdlError> {
    let tx = client.transaction().await.map_err(pg_err("begin"))?;
    tx.batch_execute("SET LOCAL lock_timeout = '500ms'")
        .await
        .map_err(pg_err("setting a lock timeout"))?;
    let sql = format!("SELECT EXISTS (SELECT 1 FROM {})", qualified(schema, table));
    match tx.query_one(&sql, &[]).await {
        Ok(row) => Ok(row.get(0)),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
            tracing::debug!("{schema}.{table} is locked by another session; taken to hold rows");
            Ok(true)
        }
        Err(e) => Err(pg_err(format!("looking into {schema}.{table}"))(e)),
    }
}

/// What setup changed or noticed, for logs.
#[derive(Debug, Default)]
pub(crate) struct SetupReport {
    pub tables: Vec<StreamTable>,
    pub created_tables: Vec<String>,
    pub added_columns: Vec<(String, String)>,
    /// (table, column, existing type, catalog type): kept as they are.
    pub type_conflicts: Vec<(String, String, String, String)>,
}

/// Creates the schema and every table, adds columns for new properties; idempotent and safe to
/// run from several processes at once (serialised by an advisory lock on the schema name).
pub(crate) async fn setup(
    client: &mut Client,
    schema: &str,
    tables: &[TableModel],
    fillfactor: u8,
    user: &str,
) -> Result<SetupReport, DdlError> {
    if is_system_schema(schema) {
        return Err(DdlError::SystemSchema(schema.to_owned()));
    }
    let tx = client.transaction().await.map_err(pg_err("begin"))?;
    lock_schema(&tx, schema).await?;
    create_schema(&tx, schema).await?;
    let mut report = SetupReport::default();
    for table in tables {
        let existing = existing_columns(&tx, schema, &table.table).await?;
        let generation = if existing.is_empty() {
            tx.batch_execute(&create_table_sql(schema, table, fillfactor))
                .await
                .map_err(pg_err(format!(
                    "creating table {schema}.{} for stream {:?}",
                    table.table, table.stream
                )))?;
            report.created_tables.push(table.table.clone());
            registry::register(&tx, schema, &table.table, &table.stream, user, true).await?
        } else {
            update_table(&tx, schema, table, &existing, &mut report).await?;
            registry::register(&tx, schema, &table.table, &table.stream, user, false).await?
        };
        registry::watch_truncate(&tx, schema, &table.table).await?;
        report.tables.push(StreamTable {
            stream: table.stream.clone(),
            table: table.table.clone(),
            generation,
        });
    }
    tx.commit().await.map_err(pg_err("committing setup"))?;
    Ok(report)
}

/// The schema (marked as ours when setup creates it) and its `_rejected_records` table.
async fn create_schema(tx: &Transaction<'_>, schema: &str) -> Result<(), DdlError> {
    let schema_exists: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
            &[&schema],
        )
        .await
        .map_err(pg_err(format!("looking for schema {schema:?}")))?
        .get(0);
    if !schema_exists {
        tx.batch_execute(&format!(
            "CREATE SCHEMA {s}; COMMENT ON SCHEMA {s} IS {}",
            literal(MARK),
            s = quote(schema)
        ))
        .await
        .map_err(pg_err(format!("creating schema {schema:?}")))?;
    }
    for (create, table, purpose) in bookkeeping(schema) {
        match table_comment(tx, schema, table).await? {
            Some(Some(comment)) if comment.starts_with(MARK) => {}
            Some(_) => {
                return Err(DdlError::NotOurs {
                    schema: schema.to_owned(),
                    table: table.to_owned(),
                    purpose: purpose.to_owned(),
                });
            }
            None => tx
                .batch_execute(&format!(
                    "{create}; COMMENT ON TABLE {} IS {}",
                    qualified(schema, table),
                    literal(MARK)
                ))
                .await
                .map_err(pg_err(format!("creating {schema}.{table}")))?,
        }
    }
    tx.batch_execute(&registry::truncated_function_sql(schema))
        .await
        .map_err(pg_err(format!("creating the TRUNCATE watch of {schema:?}")))?;
    tx.batch_execute(&crate::tombstones::prune_sql(schema))
        .await
        .map_err(pg_err(format!(
            "pruning {schema}.{}",
            crate::tombstones::TABLE
        )))
}

/// The schema's own tables besides the streams': (creation SQL, name, what it is for).
fn bookkeeping(schema: &str) -> [(String, &'static str, &'static str); 5] {
    [
        (
            crate::listing::create_listings_sql(schema),
            crate::listing::LISTINGS,
            "listings that mark what they did not return",
        ),
        (
            crate::listing::create_seen_sql(schema),
            crate::listing::SEEN,
            "the keys open listings saw",
        ),
        (
            crate::rejected::create_sql(schema),
            crate::rejected::TABLE,
            "records set aside",
        ),
        (
            crate::tombstones::create_sql(schema),
            crate::tombstones::TABLE,
            "hard deletes",
        ),
        (
            registry::create_sql(schema),
            registry::TABLE,
            "the syncs using each table",
        ),
    ]
}

/// Brings a table that exists up to the catalog: checks its key, adds the columns of new
/// properties, reports type changes, recomputes integer columns of earlier versions.
async fn update_table(
    tx: &Transaction<'_>,
    schema: &str,
    table: &TableModel,
    existing: &HashMap<String, String>,
    report: &mut SetupReport,
) -> Result<(), DdlError> {
    let comment = table_comment(tx, schema, &table.table).await?.flatten();
    if !comment.as_deref().is_some_and(|c| c.starts_with(MARK)) {
        return Err(DdlError::NotOurs {
            schema: schema.to_owned(),
            table: table.table.clone(),
            purpose: format!("stream {:?}", table.stream),
        });
    }
    check_key(tx, schema, table).await?;
    // Tables of earlier versions (with the integer cast that rounded fractions and failed on
    // values beyond 64 bits) are brought up to date once; reading generation expressions
    // locks the table, so current ones are told apart by their comment.
    let current = comment.is_some_and(|c| c.ends_with(&format!("({COLUMNS_VERSION})")));
    let old_integers = if current {
        Vec::new()
    } else {
        generated_without_range_check(tx, schema, &table.table).await?
    };
    let target = qualified(schema, &table.table);
    for column in &table.columns {
        let (sql, doing) = if old_integers.contains(&column.column) {
            (
                format!(
                    "ALTER TABLE {target} DROP COLUMN {}, ADD COLUMN {}",
                    quote(&column.column),
                    column.definition()
                ),
                "recomputing column",
            )
        } else {
            match existing.get(&column.column) {
                None => {
                    report
                        .added_columns
                        .push((table.table.clone(), column.column.clone()));
                    (
                        format!("ALTER TABLE {target} ADD COLUMN {}", column.definition()),
                        "adding column",
                    )
                }
                Some(found) => {
                    if found != column.pg_type.sql() {
                        report.type_conflicts.push((
                            table.table.clone(),
                            column.column.clone(),
                            found.clone(),
                            column.pg_type.sql().to_owned(),
                        ));
                    }
                    continue;
                }
            }
        };
        tx.batch_execute(&sql).await.map_err(pg_err(format!(
            "{doing} {:?} of {schema}.{}",
            column.column, table.table
        )))?;
    }
    // Tables made before sweeps had no reason column.
    if !existing.contains_key(crate::table::DELETED_REASON) {
        tx.batch_execute(&format!(
            "ALTER TABLE {target} ADD COLUMN IF NOT EXISTS {} text",
            quote(crate::table::DELETED_REASON)
        ))
        .await
        .map_err(pg_err(format!(
            "adding column {:?} of {schema}.{}",
            crate::table::DELETED_REASON,
            table.table
        )))?;
    }
    if !current {
        tx.batch_execute(&format!(
            "COMMENT ON TABLE {target} IS {}",
            literal(&table_mark(&table.stream))
        ))
        .await
        .map_err(pg_err(format!("marking {schema}.{}", table.table)))?;
    }
    Ok(())
}

/// Serialises setup and teardown of one schema across processes (for this transaction).
async fn lock_schema(
    tx: &deadpool_postgres::Transaction<'_>,
    schema: &str,
) -> Result<(), DdlError> {
    let lock = format!(
        "SELECT pg_advisory_xact_lock(hashtext({}))",
        literal(&format!("stripe-sync setup {schema}"))
    );
    tx.batch_execute(&lock)
        .await
        .map_err(pg_err("taking the setup lock"))
}

/// A table's comment, `None` when there is no such table (reading it takes no lock on the
/// table).
async fn table_comment(
    tx: &deadpool_postgres::Transaction<'_>,
    schema: &str,
    table: &str,
) -> Result<Option<Option<String>>, DdlError> {
    let row = tx
        .query_opt(
            "SELECT obj_description(c.oid, 'pg_class') FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
            &[&schema, &table],
        )
        .await
        .map_err(pg_err(format!("reading the comment of {schema}.{table}")))?;
    Ok(row.map(|r| r.get(0)))
}

/// The comment of a stream's table: the mark, and the version of its column definitions.
fn table_mark(stream: &str) -> String {
    format!("{MARK} for stream {stream} ({COLUMNS_VERSION})")
}

/// Fails when an existing table's primary key is not the stream's key.
async fn check_key(
    tx: &deadpool_postgres::Transaction<'_>,
    schema: &str,
    table: &TableModel,
) -> Result<(), DdlError> {
    let rows = tx
        .query(
            "SELECT a.attname FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) \
             WHERE n.nspname = $1 AND c.relname = $2 AND i.indisprimary \
             ORDER BY array_position(i.indkey::int2[], a.attnum)",
            &[&schema, &table.table],
        )
        .await
        .map_err(pg_err(format!(
            "reading the key of {schema}.{}",
            table.table
        )))?;
    let existing: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    let wanted: Vec<String> = table.keys.iter().map(|k| k.column.clone()).collect();
    if existing == wanted {
        return Ok(());
    }
    Err(DdlError::KeyChanged {
        schema: schema.to_owned(),
        table: table.table.clone(),
        stream: table.stream.clone(),
        existing: existing.join(", "),
        wanted: wanted.join(", "),
    })
}

/// Generated bigint columns made before the range check.
async fn generated_without_range_check(
    tx: &deadpool_postgres::Transaction<'_>,
    schema: &str,
    table: &str,
) -> Result<Vec<String>, DdlError> {
    let rows = tx
        .query(
            "SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
             WHERE n.nspname = $1 AND c.relname = $2 AND a.attgenerated = 's' AND a.atttypid = 'bigint'::regtype \
             AND pg_get_expr(d.adbin, d.adrelid) NOT LIKE '%trunc(%'",
            &[&schema, &table],
        )
        .await
        .map_err(pg_err(format!("reading the columns of {schema}.{table}")))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

async fn existing_columns(
    tx: &deadpool_postgres::Transaction<'_>,
    schema: &str,
    table: &str,
) -> Result<HashMap<String, String>, DdlError> {
    let rows = tx
        .query(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a \
             JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
            &[&schema, &table],
        )
        .await
        .map_err(pg_err(format!("reading the columns of {schema}.{table}")))?;
    Ok(rows
        .into_iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
        .collect())
}

pub(crate) fn create_table_sql(schema: &str, table: &TableModel, fillfactor: u8) -> String {
    let mut defs: Vec<String> = table
        .keys
        .iter()
        .map(|k| format!("{} {} NOT NULL", quote(&k.column), k.pg_type.sql()))
        .collect();
    defs.extend(table.system_definitions());
    defs.extend(table.columns.iter().map(|c| c.definition()));
    if !table.keys.is_empty() {
        let cols: Vec<String> = table.keys.iter().map(|k| quote(&k.column)).collect();
        defs.push(format!("PRIMARY KEY ({})", cols.join(", ")));
    }
    let name = qualified(schema, &table.table);
    format!(
        "CREATE TABLE IF NOT EXISTS {name} (\n  {}\n) WITH (fillfactor = {});\nCOMMENT ON TABLE {name} IS {}",
        defs.join(",\n  "),
        fillfactor.clamp(10, 100),
        literal(&table_mark(&table.stream))
    )
}

/// What teardown removed, and what it kept for other syncs.
#[derive(Debug, Default)]
pub(crate) struct TeardownReport {
    pub dropped_tables: Vec<String>,
    /// Tables other syncs still use, with those syncs.
    pub kept_tables: Vec<(String, Vec<String>)>,
    pub dropped_schema: bool,
    /// Why the schema stayed, when it did.
    pub kept_schema_because: Option<String>,
}

/// Takes `user` off every table's users, then drops what setup created that no other sync
/// uses: the tables it marked, the schema's bookkeeping tables once no stream table is left,
/// then the schema when setup created it and nothing else is left in it. Other tables, views
/// and functions stay; one that depends on a table of ours stops teardown with Postgres'
/// message naming it.
pub(crate) async fn teardown(
    client: &mut Client,
    schema: &str,
    user: &str,
) -> Result<TeardownReport, DdlError> {
    if is_system_schema(schema) {
        return Err(DdlError::SystemSchema(schema.to_owned()));
    }
    let tx = client.transaction().await.map_err(pg_err("begin"))?;
    lock_schema(&tx, schema).await?;
    let users = registry::leave(&tx, schema, user).await?;
    let ours = tx
        .query(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') \
             AND obj_description(c.oid, 'pg_class') LIKE $2 ORDER BY c.relname",
            &[&schema, &format!("{MARK}%")],
        )
        .await
        .map_err(pg_err(format!("listing the tables of {schema:?}")))?;
    let bookkeeping: Vec<&str> = bookkeeping(schema).iter().map(|(_, t, _)| *t).collect();
    let mut report = TeardownReport::default();
    let (mut doomed, mut ours_bookkeeping) = (Vec::new(), Vec::new());
    for row in &ours {
        let table: String = row.get(0);
        if bookkeeping.contains(&table.as_str()) {
            ours_bookkeeping.push(table);
            continue;
        }
        match users.get(&table).filter(|u| !u.is_empty()) {
            Some(others) => report.kept_tables.push((table, others.clone())),
            None => doomed.push(table),
        }
    }
    let keeping_any = !report.kept_tables.is_empty();
    for table in doomed {
        drop_table(&tx, schema, &table).await?;
        if keeping_any {
            registry::dropped(&tx, schema, &table).await?;
        }
        report.dropped_tables.push(table);
    }
    // Records set aside, tombstones and the registry serve every stream table of the schema.
    if !keeping_any {
        for table in ours_bookkeeping {
            drop_table(&tx, schema, &table).await?;
            report.dropped_tables.push(table);
        }
        registry::drop_truncate_watch(&tx, schema).await?;
    }
    let schema_row = tx
        .query_opt(
            "SELECT obj_description(n.oid, 'pg_namespace'), \
             EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = n.oid) \
             OR EXISTS (SELECT 1 FROM pg_proc p WHERE p.pronamespace = n.oid) \
             OR EXISTS (SELECT 1 FROM pg_type t WHERE t.typnamespace = n.oid AND t.typrelid = 0 AND t.typelem = 0) \
             FROM pg_namespace n WHERE n.nspname = $1",
            &[&schema],
        )
        .await
        .map_err(pg_err(format!("looking at schema {schema:?}")))?;
    match schema_row {
        None => {}
        Some(row) => {
            let (comment, occupied): (Option<String>, bool) = (row.get(0), row.get(1));
            if comment.as_deref() != Some(MARK) {
                report.kept_schema_because = Some("setup did not create it".into());
            } else if occupied {
                report.kept_schema_because = Some("other objects are in it".into());
            } else {
                tx.batch_execute(&format!("DROP SCHEMA {}", quote(schema)))
                    .await
                    .map_err(pg_err(format!("dropping schema {schema:?}")))?;
                report.dropped_schema = true;
            }
        }
    }
    tx.commit().await.map_err(pg_err("committing teardown"))?;
    Ok(report)
}

async fn drop_table(tx: &Transaction<'_>, schema: &str, table: &str) -> Result<(), DdlError> {
    tx.batch_execute(&format!("DROP TABLE {}", qualified(schema, table)))
        .await
        .map_err(pg_err(format!("dropping {schema}.{table}")))
}
