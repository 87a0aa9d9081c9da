//! What a DDL step's failure says, and the names setup refuses or marks: a leaf, so that the
//! table registry and the DDL can both use it.

/// The comment that marks what this destination created; teardown removes nothing else.
pub(crate) const MARK: &str = "created by dest-postgres";

/// Postgres' own schemas: every command refuses them.
pub(crate) fn is_system_schema(schema: &str) -> bool {
    schema == "information_schema" || schema.starts_with("pg_")
}

/// A failed DDL step.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DdlError {
    #[error("{context}: {message}")]
    Postgres { context: String, message: String },
    #[error("schema: {0:?} is a Postgres system schema; choose another")]
    SystemSchema(String),
    #[error(
        "table {schema}.{table} has the primary key ({existing}) but stream {stream:?} now has the key ({wanted}): \
         the table was made for another key, and its rows cannot be matched to the new one. Drop the table \
         (`sync-engine teardown`, or DROP TABLE) so that setup recreates it, or keep the old key in the catalog"
    )]
    KeyChanged {
        schema: String,
        table: String,
        stream: String,
        existing: String,
        wanted: String,
    },
    #[error(
        "table {schema}.{table} (for {purpose}) exists but dest-postgres did not create it (its comment does not \
         say \"{MARK}\"): setup never takes over a table it did not make, since teardown would then drop it with \
         its rows. Rename or drop that table, or set another schema (a table a build of stripe-sync from before \
         2026-11-30 created is unmarked: mark it with COMMENT ON TABLE {schema}.{table} IS '{MARK}')"
    )]
    NotOurs {
        schema: String,
        table: String,
        purpose: String,
    },
}

impl DdlError {
    /// Whether the fix is in the configuration or catalog rather than in the database.
    pub(crate) fn is_config_error(&self) -> bool {
        matches!(
            self,
            DdlError::SystemSchema(_) | DdlError::KeyChanged { .. } | DdlError::NotOurs { .. }
        )
    }
}

pub(crate) fn pg_err(context: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> DdlError {
    let context = context.into();
    move |e| DdlError::Postgres {
        context,
        message: pg_message(&e),
    }
}

/// Postgres' message for an error, with what the destination's own limits mean when one was
/// hit (`lock_timeout_ms`, `statement_timeout_ms`).
pub(crate) fn pg_message(e: &tokio_postgres::Error) -> String {
    use tokio_postgres::error::SqlState;
    let why = match e.code() {
        Some(c) if *c == SqlState::LOCK_NOT_AVAILABLE => {
            " (another session holds a lock on the table longer than lock_timeout_ms allows)"
        }
        Some(c) if *c == SqlState::QUERY_CANCELED => {
            " (the statement ran longer than statement_timeout_ms allows)"
        }
        _ => "",
    };
    format!("{}{why}", pg_connect::error_text(e))
}
