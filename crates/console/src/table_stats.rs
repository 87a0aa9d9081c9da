//! Row counts and the last `_synced_at` of the tables in a destination schema, for the explorer.

use std::collections::BTreeMap;
use std::time::Duration;

use pg_tables::ident::{literal as quote_literal, quote as quote_ident};

/// Where a destination's tables are.
#[derive(Clone)]
pub struct Destination {
    /// What the explorer calls it (a pipeline id, `settings`).
    pub label: String,
    /// Its Postgres URL (never shown: it may hold a password).
    pub url: String,
    /// Its schema.
    pub schema: String,
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Destination")
            .field("label", &self.label)
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

/// One table's numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct TableStats {
    /// Rows, tombstones (deleted objects) left out.
    pub rows: i64,
    /// The newest `_synced_at`, RFC 3339; `None` for an empty table.
    pub last_synced_at: Option<String>,
}

/// The numbers of every table that exists, or why there are none.
#[derive(Debug, Clone, Default)]
pub struct SchemaStats {
    /// By table name.
    pub tables: BTreeMap<String, TableStats>,
    /// Why the numbers could not be read (a message without the URL's password).
    pub problem: Option<String>,
}

/// Counting a big table is a scan; past this the explorer shows Postgres' estimate.
const EXACT_COUNT_TIMEOUT: Duration = Duration::from_secs(3);

/// Reads the numbers of the tables `tables` of the destination; never fails (a problem is
/// reported in the answer).
pub async fn read(destination: &Destination, tables: &[String]) -> SchemaStats {
    match read_exact(destination, tables).await {
        Ok(tables) => SchemaStats {
            tables,
            problem: None,
        },
        Err(problem) => SchemaStats {
            tables: BTreeMap::new(),
            problem: Some(problem),
        },
    }
}

async fn read_exact(
    destination: &Destination,
    tables: &[String],
) -> Result<BTreeMap<String, TableStats>, String> {
    let client = pg_connect::connect(&destination.url, None, "stripe-sync console")
        .await
        .map_err(|(_, message)| message)?;
    let existing: Vec<String> = client
        .query(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = '_deleted'
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND c.relname = ANY($2)",
            &[&destination.schema, &tables],
        )
        .await
        .map_err(|e| pg_connect::error_text(&e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if existing.is_empty() {
        return Ok(BTreeMap::new());
    }
    let schema = quote_ident(&destination.schema);
    let per_table: Vec<String> = existing
        .iter()
        .map(|t| {
            format!(
                "SELECT {} AS t, (count(*) FILTER (WHERE NOT _deleted))::bigint AS n,
                        to_char(max(_synced_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS s
                 FROM {schema}.{}",
                quote_literal(t),
                quote_ident(t)
            )
        })
        .collect();
    client
        .batch_execute(&format!(
            "SET statement_timeout = {}",
            EXACT_COUNT_TIMEOUT.as_millis()
        ))
        .await
        .map_err(|e| pg_connect::error_text(&e))?;
    match client.query(&per_table.join(" UNION ALL "), &[]).await {
        Ok(rows) => Ok(rows
            .iter()
            .map(|r| {
                (
                    r.get::<_, String>(0),
                    TableStats {
                        rows: r.get(1),
                        last_synced_at: r.get(2),
                    },
                )
            })
            .collect()),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED) => {
            estimates(&client, &destination.schema, &existing).await
        }
        Err(e) => Err(pg_connect::error_text(&e)),
    }
}

/// Postgres' own row estimates, when an exact count takes too long.
async fn estimates(
    client: &tokio_postgres::Client,
    schema: &str,
    tables: &[String],
) -> Result<BTreeMap<String, TableStats>, String> {
    let rows = client
        .query(
            "SELECT relname, n_live_tup FROM pg_stat_user_tables
             WHERE schemaname = $1 AND relname = ANY($2)",
            &[&schema, &tables],
        )
        .await
        .map_err(|e| pg_connect::error_text(&e))?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get::<_, String>(0),
                TableStats {
                    rows: r.get(1),
                    last_synced_at: None,
                },
            )
        })
        .collect())
}
