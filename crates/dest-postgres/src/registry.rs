//! `_sync_tables`: which syncs use each table of the schema, and the table's generation.
//!
//! Several syncs (pipelines, `--sync-id`s, accounts) may write one schema. Setup registers its
//! sync as a user of each table it needs; teardown unregisters it and drops only the tables no
//! other sync uses. The generation is a random token set when setup creates the table: a
//! checkpoint remembers it, so a sync whose table was dropped and created again (or that now
//! writes another database) notices, and reads the stream again.

use deadpool_postgres::Transaction;

use crate::ddl::{DdlError, pg_err};
use crate::ident::qualified;

pub const TABLE: &str = "_sync_tables";

/// The user id of a sync that did not name itself (`sync_id` unset).
pub const UNNAMED: &str = "";

pub fn create_sql(schema: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (table_name text PRIMARY KEY, stream text NOT NULL, \
         generation text NOT NULL, users text[] NOT NULL DEFAULT '{{}}', \
         created_at timestamptz NOT NULL DEFAULT now())",
        qualified(schema, TABLE)
    )
}

/// How a sync is named in messages.
pub fn describe_user(user: &str) -> String {
    if user == UNNAMED {
        "a sync without a sync_id".to_owned()
    } else {
        format!("sync {user:?}")
    }
}

/// A new generation: random, so that two databases never share one.
const NEW_GENERATION: &str =
    "md5(random()::text || clock_timestamp()::text || pg_backend_pid()::text)";

/// Adds `user` to a table's users and returns the table's generation. `created`: setup just
/// created the table, so it gets a new generation (syncs registered under the same name before
/// keep their place: they notice the new generation on their next run); otherwise a table setup
/// made before tables were registered gets its generation now.
pub async fn register(
    tx: &Transaction<'_>,
    schema: &str,
    table: &str,
    stream: &str,
    user: &str,
    created: bool,
) -> Result<String, DdlError> {
    let renew = if created {
        "stream = EXCLUDED.stream, generation = EXCLUDED.generation, "
    } else {
        ""
    };
    let sql = format!(
        "INSERT INTO {t} AS r (table_name, stream, generation, users) VALUES ($1, $2, {NEW_GENERATION}, ARRAY[$3]) \
         ON CONFLICT (table_name) DO UPDATE SET {renew}\
         users = CASE WHEN $3 = ANY (r.users) THEN r.users ELSE r.users || $3 END \
         RETURNING generation",
        t = qualified(schema, TABLE)
    );
    let row = tx
        .query_one(&sql, &[&table, &stream, &user])
        .await
        .map_err(pg_err(format!("registering {schema}.{table}")))?;
    Ok(row.get(0))
}

/// Removes `user` from every table's users; returns each table's remaining users.
pub async fn leave(
    tx: &Transaction<'_>,
    schema: &str,
    user: &str,
) -> Result<std::collections::HashMap<String, Vec<String>>, DdlError> {
    let exists: bool = tx
        .query_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[&qualified(schema, TABLE)],
        )
        .await
        .map_err(pg_err(format!("looking for {schema}.{TABLE}")))?
        .get(0);
    if !exists {
        return Ok(Default::default());
    }
    let sql = format!(
        "UPDATE {t} SET users = array_remove(users, $1) RETURNING table_name, users",
        t = qualified(schema, TABLE)
    );
    let rows = tx
        .query(&sql, &[&user])
        .await
        .map_err(pg_err(format!("unregistering from {schema}.{TABLE}")))?;
    Ok(rows
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, Vec<String>>(1)))
        .collect())
}

/// Forgets a table teardown dropped.
pub async fn dropped(tx: &Transaction<'_>, schema: &str, table: &str) -> Result<(), DdlError> {
    let sql = format!(
        "DELETE FROM {t} WHERE table_name = $1",
        t = qualified(schema, TABLE)
    );
    tx.execute(&sql, &[&table])
        .await
        .map_err(pg_err(format!("unregistering {schema}.{table}")))?;
    Ok(())
}
