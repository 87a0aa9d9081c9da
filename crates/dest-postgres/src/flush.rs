//! One flush: COPY a batch into the session's staging table and merge it into the target, in
//! one transaction, or COPY it straight into the target while the stream only brings new keys;
//! retried with backoff when the connection is lost.

use std::time::Duration;

use bytes::Bytes;
use deadpool_postgres::Pool;
use futures_util::SinkExt;
use tokio_postgres::error::SqlState;

pub(crate) use crate::flush_error::FlushError;

use crate::merge::{MERGE_PLAN_SETTINGS, Merge, MergeSql};
use crate::rejected::{self, RejectedRecord};

/// Attempts before a lost connection fails the stream.
const ATTEMPTS: u32 = 6;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// A batch goes to Postgres in pieces of this size.
const COPY_CHUNK_BYTES: usize = 1024 * 1024;

/// How a batch reaches the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Load {
    /// Straight into the target, while the stream has only brought new keys; a key that exists
    /// makes the batch go through the merge instead, and so do the stream's later batches.
    Direct,
    /// Staging table and merge; `dedupe` when the batch repeats a key.
    Merge { dedupe: bool },
}

/// Whether the target holds any row (a stream's first load goes straight in when it does not).
pub(crate) async fn target_has_rows(pool: &Pool, sql: &MergeSql) -> Result<bool, FlushError> {
    let client = pool.get().await.map_err(|e| FlushError::connecting(&e))?;
    let row = client
        .query_one(&sql.target_has_rows, &[])
        .await
        .map_err(|e| FlushError::from_pg("reading the target", &e))?;
    Ok(row.get(0))
}

/// What a flush did.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub rows: u64,
    /// Whether later batches may still go straight into the target.
    pub direct_ok: bool,
}

/// One batch: its rows (a framed COPY stream), and the records set aside, which are kept in
/// the same transaction.
pub(crate) struct BatchData {
    pub rows: Bytes,
    pub row_count: u64,
    pub rejected: Vec<RejectedRecord>,
    /// The open listings whose seen keys the batch's keys join (it then merges).
    pub seen_by: Vec<crate::listing::OpenListing>,
}

/// Loads one batch, retrying lost connections.
pub(crate) async fn flush(
    pool: &Pool,
    sql: &MergeSql,
    batch: &BatchData,
    load: Load,
    stream: &str,
) -> Result<Loaded, FlushError> {
    let mut waits = sync_connector::backoff::backoff(FIRST_BACKOFF, MAX_BACKOFF);
    let mut attempt = 1;
    loop {
        match flush_once(pool, sql, batch, load).await {
            Ok(loaded) => return Ok(loaded),
            Err(e) if e.retryable && attempt < ATTEMPTS => {
                let wait = waits.next().unwrap_or(MAX_BACKOFF);
                tracing::warn!(
                    stream,
                    attempt,
                    "flush failed, retrying in {wait:?}: {}",
                    e.message
                );
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn copy_rows(
    tx: &deadpool_postgres::Transaction<'_>,
    statement: &str,
    data: Bytes,
) -> Result<u64, tokio_postgres::Error> {
    let sink = tx.copy_in(statement).await?;
    futures_util::pin_mut!(sink);
    // The connection copies what it sends into its write buffer, which keeps its size: sent
    // whole, every batch would leave a batch-sized buffer on every connection of the pool.
    let mut offset = 0;
    while offset < data.len() {
        let end = (offset + COPY_CHUNK_BYTES).min(data.len());
        sink.send(data.slice(offset..end)).await?;
        offset = end;
    }
    sink.finish().await
}

async fn keep_rejected(
    tx: &deadpool_postgres::Transaction<'_>,
    sql: &MergeSql,
    batch: &BatchData,
) -> Result<(), FlushError> {
    rejected::insert(tx, &sql.insert_rejected, &batch.rejected)
        .await
        .map(|_| ())
        .map_err(|e| FlushError::from_pg("keeping the rejected records", &e))
}

/// Merges the `staged` rows of the staging table into the target.
async fn merge(
    tx: &deadpool_postgres::Transaction<'_>,
    merge: &Merge,
    staged: u64,
) -> Result<(), tokio_postgres::Error> {
    tx.batch_execute(MERGE_PLAN_SETTINGS).await?;
    let updated = match &merge.update {
        Some(update) => tx.execute(update.as_str(), &[]).await?,
        None => 0,
    };
    if updated < staged {
        tx.execute(merge.insert.as_str(), &[]).await?;
    }
    Ok(())
}

async fn flush_once(
    pool: &Pool,
    sql: &MergeSql,
    batch: &BatchData,
    load: Load,
) -> Result<Loaded, FlushError> {
    let mut client = pool.get().await.map_err(|e| FlushError::connecting(&e))?;
    if batch.row_count == 0 {
        let tx = client
            .transaction()
            .await
            .map_err(|e| FlushError::from_pg("begin", &e))?;
        keep_rejected(&tx, sql, batch).await?;
        tx.commit()
            .await
            .map_err(|e| FlushError::from_pg("commit", &e))?;
        return Ok(Loaded {
            rows: 0,
            direct_ok: load == Load::Direct,
        });
    }
    let data = batch.rows.clone();
    if load == Load::Direct && batch.seen_by.is_empty() {
        let tx = client
            .transaction()
            .await
            .map_err(|e| FlushError::from_pg("begin", &e))?;
        match copy_rows(&tx, &sql.copy_direct, data.clone()).await {
            Ok(rows) => {
                keep_rejected(&tx, sql, batch).await?;
                tx.commit()
                    .await
                    .map_err(|e| FlushError::from_pg("commit", &e))?;
                return Ok(Loaded {
                    rows,
                    direct_ok: true,
                });
            }
            // A key that is already there: this batch, and the stream's next ones, merge.
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => drop(tx),
            Err(e) => return Err(FlushError::from_pg("COPY", &e)),
        }
    }
    let dedupe = matches!(load, Load::Merge { dedupe: true });
    client
        .batch_execute(&sql.create_staging)
        .await
        .map_err(|e| FlushError::from_pg("creating the staging table", &e))?;
    let tx = client
        .transaction()
        .await
        .map_err(|e| FlushError::from_pg("begin", &e))?;
    let rows = copy_rows(&tx, &sql.copy, data)
        .await
        .map_err(|e| FlushError::from_pg("COPY", &e))?;
    merge(
        &tx,
        if dedupe {
            &sql.merge_dedupe
        } else {
            &sql.merge
        },
        rows,
    )
    .await
    .map_err(|e| FlushError::from_pg("merge", &e))?;
    for listing in &batch.seen_by {
        tx.execute(sql.record_seen(&listing.scope).as_str(), &[&listing.id])
            .await
            .map_err(|e| FlushError::from_pg("recording the keys a listing saw", &e))?;
    }
    keep_rejected(&tx, sql, batch).await?;
    tx.commit()
        .await
        .map_err(|e| FlushError::from_pg("commit", &e))?;
    Ok(Loaded {
        rows,
        direct_ok: false,
    })
}
