//! Why a flush (or a listing's start or end) failed, and whether trying again may help.

use tokio_postgres::error::SqlState;

#[derive(Debug)]
pub(crate) struct FlushError {
    pub message: String,
    pub retryable: bool,
    /// No connection could be had or kept: the database's failure, which every stream meets,
    /// not this batch's.
    pub database_down: bool,
}

impl FlushError {
    pub(crate) fn from_pg(context: &str, e: &tokio_postgres::Error) -> FlushError {
        FlushError {
            message: format!("{context}: {}", crate::ddl_error::pg_message(e)),
            retryable: is_retryable(e),
            database_down: is_connection_lost(e),
        }
    }

    /// A connection the pool could not make, named by Postgres' own reason ("database … is
    /// not currently accepting connections", "connection refused"), not the pool's wrapper.
    pub(crate) fn connecting(e: &deadpool_postgres::PoolError) -> FlushError {
        FlushError {
            message: format!("connecting: {}", crate::connect::pool_error_text(e)),
            retryable: true,
            database_down: true,
        }
    }
}

/// True when the connection itself is gone (closed, a connection-class SQLSTATE, the server
/// shutting it down), as opposed to a statement that failed on a working connection.
fn is_connection_lost(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        Some(code) => {
            code.code().starts_with("08")
                || [
                    SqlState::ADMIN_SHUTDOWN,
                    SqlState::CRASH_SHUTDOWN,
                    SqlState::CANNOT_CONNECT_NOW,
                ]
                .contains(code)
        }
        // No SQLSTATE: an I/O or protocol failure on the connection.
        None => true,
    }
}

/// True for failures where the same batch may succeed on a new connection: a lost
/// connection, or a conflict or a full server that a moment later may not be there.
fn is_retryable(e: &tokio_postgres::Error) -> bool {
    e.is_closed()
        || is_connection_lost(e)
        || e.code().is_some_and(|code| {
            [
                SqlState::T_R_SERIALIZATION_FAILURE,
                SqlState::T_R_DEADLOCK_DETECTED,
                SqlState::TOO_MANY_CONNECTIONS,
            ]
            .contains(code)
        })
}
