//! Setup and teardown: the schema, one table per stream, schema evolution.

use std::collections::HashMap;

use deadpool_postgres::Client;

use crate::ident::{literal, qualified, quote};
use crate::table::TableModel;

/// Schemas teardown refuses to drop.
const PROTECTED_SCHEMAS: [&str; 4] = ["public", "information_schema", "pg_catalog", "pg_toast"];

/// A failed DDL step.
#[derive(Debug, thiserror::Error)]
pub enum DdlError {
    #[error("{context}: {message}")]
    Postgres { context: String, message: String },
    #[error("refusing to drop the protected schema {0:?}")]
    Protected(String),
}

fn pg_err(context: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> DdlError {
    let context = context.into();
    move |e| DdlError::Postgres {
        context,
        message: pg_connect::error_text(&e),
    }
}

/// What setup changed or noticed, for logs.
#[derive(Debug, Default)]
pub struct SetupReport {
    pub created_tables: Vec<String>,
    pub added_columns: Vec<(String, String)>,
    /// (table, column, existing type, catalog type): kept as they are.
    pub type_conflicts: Vec<(String, String, String, String)>,
}

/// Creates the schema and every table, adds columns for new properties; idempotent and safe to
/// run from several processes at once (serialised by an advisory lock on the schema name).
pub async fn setup(
    client: &mut Client,
    schema: &str,
    tables: &[TableModel],
) -> Result<SetupReport, DdlError> {
    let tx = client.transaction().await.map_err(pg_err("begin"))?;
    let lock = format!(
        "SELECT pg_advisory_xact_lock(hashtext({}))",
        literal(&format!("stripe-sync setup {schema}"))
    );
    tx.batch_execute(&lock)
        .await
        .map_err(pg_err("taking the setup lock"))?;
    tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", quote(schema)))
        .await
        .map_err(pg_err(format!("creating schema {schema:?}")))?;
    let mut report = SetupReport::default();
    for table in tables {
        let existing = existing_columns(&tx, schema, &table.table).await?;
        if existing.is_empty() {
            tx.batch_execute(&create_table_sql(schema, table))
                .await
                .map_err(pg_err(format!(
                    "creating table {schema}.{} for stream {:?}",
                    table.table, table.stream
                )))?;
            report.created_tables.push(table.table.clone());
            continue;
        }
        for column in &table.columns {
            match existing.get(&column.column) {
                None => {
                    let sql = format!(
                        "ALTER TABLE {} ADD COLUMN {}",
                        qualified(schema, &table.table),
                        column.definition()
                    );
                    tx.batch_execute(&sql).await.map_err(pg_err(format!(
                        "adding column {:?} to {schema}.{}",
                        column.column, table.table
                    )))?;
                    report
                        .added_columns
                        .push((table.table.clone(), column.column.clone()));
                }
                Some(found) if found != column.pg_type.sql() => {
                    report.type_conflicts.push((
                        table.table.clone(),
                        column.column.clone(),
                        found.clone(),
                        column.pg_type.sql().to_owned(),
                    ));
                }
                Some(_) => {}
            }
        }
    }
    tx.commit().await.map_err(pg_err("committing setup"))?;
    Ok(report)
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

pub fn create_table_sql(schema: &str, table: &TableModel) -> String {
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
    format!(
        "CREATE TABLE IF NOT EXISTS {} (\n  {}\n)",
        qualified(schema, &table.table),
        defs.join(",\n  ")
    )
}

/// Drops the schema and everything in it.
pub async fn teardown(client: &Client, schema: &str) -> Result<(), DdlError> {
    if PROTECTED_SCHEMAS.contains(&schema) || schema.starts_with("pg_") {
        return Err(DdlError::Protected(schema.to_owned()));
    }
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", quote(schema)))
        .await
        .map_err(pg_err(format!("dropping schema {schema:?}")))
}
