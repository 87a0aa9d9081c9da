//! One flush: COPY a batch into the session's staging table and merge it into the target, in
//! one transaction; retried with backoff when the connection is lost.

use std::time::Duration;

use bytes::Bytes;
use deadpool_postgres::Pool;
use futures_util::SinkExt;
use tokio_postgres::error::SqlState;

use crate::merge::MergeSql;
use pg_connect::error_text;

/// Attempts before a lost connection fails the stream.
const ATTEMPTS: u32 = 6;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

#[derive(Debug)]
pub struct FlushError {
    pub message: String,
    pub retryable: bool,
}

impl FlushError {
    fn from_pg(context: &str, e: &tokio_postgres::Error) -> FlushError {
        FlushError {
            message: format!("{context}: {}", error_text(e)),
            retryable: is_retryable(e),
        }
    }
}

/// True for failures where the same batch may succeed on a new connection.
fn is_retryable(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => {
            code.code().starts_with("08")
                || [
                    SqlState::ADMIN_SHUTDOWN,
                    SqlState::CRASH_SHUTDOWN,
                    SqlState::CANNOT_CONNECT_NOW,
                    SqlState::T_R_SERIALIZATION_FAILURE,
                    SqlState::T_R_DEADLOCK_DETECTED,
                    SqlState::TOO_MANY_CONNECTIONS,
                ]
                .contains(code)
        }
        // No SQLSTATE: an I/O or protocol failure on the connection.
        None => true,
    }
}

/// Loads one batch. Returns the number of rows copied.
pub async fn flush(
    pool: &Pool,
    sql: &MergeSql,
    data: Bytes,
    dedupe: bool,
    stream: &str,
) -> Result<u64, FlushError> {
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        match flush_once(pool, sql, data.clone(), dedupe).await {
            Ok(rows) => return Ok(rows),
            Err(e) if e.retryable && attempt < ATTEMPTS => {
                tracing::warn!(
                    stream,
                    attempt,
                    "flush failed, retrying in {backoff:?}: {}",
                    e.message
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(8));
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn flush_once(
    pool: &Pool,
    sql: &MergeSql,
    data: Bytes,
    dedupe: bool,
) -> Result<u64, FlushError> {
    let mut client = pool.get().await.map_err(|e| FlushError {
        message: format!("connecting: {e}"),
        retryable: true,
    })?;
    client
        .batch_execute(&sql.create_staging)
        .await
        .map_err(|e| FlushError::from_pg("creating the staging table", &e))?;
    let tx = client
        .transaction()
        .await
        .map_err(|e| FlushError::from_pg("begin", &e))?;
    let sink = tx
        .copy_in(&sql.copy)
        .await
        .map_err(|e| FlushError::from_pg("COPY", &e))?;
    futures_util::pin_mut!(sink);
    sink.send(data)
        .await
        .map_err(|e| FlushError::from_pg("COPY", &e))?;
    let rows = sink
        .finish()
        .await
        .map_err(|e| FlushError::from_pg("COPY", &e))?;
    let merge = if dedupe {
        &sql.merge_dedupe
    } else {
        &sql.merge
    };
    tx.batch_execute(merge)
        .await
        .map_err(|e| FlushError::from_pg("merge", &e))?;
    tx.commit()
        .await
        .map_err(|e| FlushError::from_pg("commit", &e))?;
    Ok(rows)
}
