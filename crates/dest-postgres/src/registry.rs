//! `_sync_tables`: which syncs use each table of the schema, and the table's generation.
//!
//! Several syncs (pipelines, `--sync-id`s, accounts) may write one schema. Setup registers its
//! sync as a user of each table it needs; teardown unregisters it and drops only the tables no
//! other sync uses. The generation is a random token set when setup creates the table: a
//! checkpoint remembers it, so a sync whose table was dropped and created again (or that now
//! writes another database) notices, and reads the stream again.

use deadpool_postgres::Transaction;

use crate::ddl_error::{DdlError, pg_err};
use crate::ident::qualified;

pub(crate) const TABLE: &str = "_sync_tables";

/// The user id of a sync that did not name itself (`sync_id` unset).
pub(crate) const UNNAMED: &str = "";

pub(crate) fn create_sql(schema: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (table_name text PRIMARY KEY, stream text NOT NULL, \
         generation text NOT NULL, users text[] NOT NULL DEFAULT '{{}}', \
         created_at timestamptz NOT NULL DEFAULT now())",
        qualified(schema, TABLE)
    )
}

/// How a sync is named in messages.
pub(crate) fn describe_user(user: &str) -> String {
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
pub(crate) async fn register(
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
pub(crate) async fn leave(
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
pub(crate) async fn dropped(
    tx: &Transaction<'_>,
    schema: &str,
    table: &str,
) -> Result<(), DdlError> {
    let sql = format!(
        "DELETE FROM {t} WHERE table_name = $1",
        t = qualified(schema, TABLE)
    );
    tx.execute(&sql, &[&table])
        .await
        .map_err(pg_err(format!("unregistering {schema}.{table}")))?;
    Ok(())
}

/// The function a `TRUNCATE` of a registered table runs: the table gets a new generation, so a
/// checkpoint written into it notices, whatever is written to the table afterwards.
const TRUNCATED: &str = "_sync_tables_truncated";

/// Creates (or replaces) the function [`TRUNCATED`].
pub(crate) fn truncated_function_sql(schema: &str) -> String {
    let registry = qualified(schema, TABLE);
    format!(
        "CREATE OR REPLACE FUNCTION {f}() RETURNS trigger LANGUAGE plpgsql AS $body$ BEGIN \
         UPDATE {registry} SET generation = {NEW_GENERATION} WHERE table_name = TG_TABLE_NAME; \
         RETURN NULL; END $body$",
        f = qualified(schema, TRUNCATED)
    )
}

/// Drops the function [`TRUNCATED`] with the last table that used it, and its trigger from any
/// table that stays (one that is no longer marked as ours, say).
pub(crate) async fn drop_truncate_watch(
    tx: &Transaction<'_>,
    schema: &str,
) -> Result<(), DdlError> {
    let watched = tx
        .query(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND t.tgname = $2",
            &[&schema, &TRUNCATED],
        )
        .await
        .map_err(pg_err(format!(
            "listing the TRUNCATE watches of {schema:?}"
        )))?;
    for row in watched {
        let table: String = row.get(0);
        tx.batch_execute(&format!(
            "DROP TRIGGER {} ON {}",
            crate::ident::quote(TRUNCATED),
            qualified(schema, &table)
        ))
        .await
        .map_err(pg_err(format!("unwatching {schema}.{table}")))?;
    }
    tx.batch_execute(&format!(
        "DROP FUNCTION IF EXISTS {}()",
        qualified(schema, TRUNCATED)
    ))
    .await
    .map_err(pg_err(format!("dropping the TRUNCATE watch of {schema:?}")))
}

/// Gives a table the trigger that renews its generation on `TRUNCATE`, unless it has it.
pub(crate) async fn watch_truncate(
    tx: &Transaction<'_>,
    schema: &str,
    table: &str,
) -> Result<(), DdlError> {
    let has: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND t.tgname = $3)",
            &[&schema, &table, &TRUNCATED],
        )
        .await
        .map_err(pg_err(format!(
            "looking at the triggers of {schema}.{table}"
        )))?
        .get(0);
    if has {
        return Ok(());
    }
    tx.batch_execute(&format!(
        "CREATE TRIGGER {trigger} AFTER TRUNCATE ON {t} FOR EACH STATEMENT EXECUTE FUNCTION {f}()",
        trigger = crate::ident::quote(TRUNCATED),
        t = qualified(schema, table),
        f = qualified(schema, TRUNCATED)
    ))
    .await
    .map_err(pg_err(format!("watching {schema}.{table} for TRUNCATE")))
}
