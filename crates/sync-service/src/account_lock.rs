//! At most one step per Stripe account at a time, over every worker: a session advisory lock
//! in the control database, held by a connection taken out of the pool, so that whatever ends
//! the step (its end, an error, a crash of the worker) closes the connection and frees it.
//!
//! The lock goes in turn. A pipeline that finds it taken is noted as waiting
//! (`account_waiters`); one that gets it while another pipeline of the account has waited
//! longer lets it go and waits its turn. Without this, a backfill of many steps would take the
//! lock again the moment it freed it, and the others would wait for its whole backfill.

use deadpool_postgres::{Object, Pool};

use crate::control_error::ControlError;

/// A held account lock; dropping it frees the account.
pub struct AccountLock {
    _connection: deadpool_postgres::ClientWrapper,
}

/// A waiter not seen for this long (paused, deleted, its worker gone) is not waiting any more;
/// waiters try again every 3 s.
const WAITER_GONE_AFTER: &str = "15 seconds";

/// Takes the lock of `key` for `pipeline` if no one holds it and no other pipeline of the
/// account has waited longer; otherwise notes `pipeline` as waiting.
pub(crate) async fn take_turn(
    pool: &Pool,
    key: &str,
    pipeline: &str,
) -> Result<Option<AccountLock>, ControlError> {
    let lock = try_lock(pool, key).await?;
    let client = pool.get().await?;
    if lock.is_some() {
        let others_first: bool = client
            .query_one(
                &format!(
                    "SELECT EXISTS (
                       SELECT 1 FROM sync_service.account_waiters o
                       WHERE o.account = $1 AND o.pipeline_id <> $2
                         AND o.seen > now() - interval '{WAITER_GONE_AFTER}'
                         AND o.since < coalesce(
                           (SELECT since FROM sync_service.account_waiters
                            WHERE account = $1 AND pipeline_id = $2
                              AND seen > now() - interval '{WAITER_GONE_AFTER}'),
                           now()))"
                ),
                &[&key, &pipeline],
            )
            .await?
            .get(0);
        if !others_first {
            client
                .execute(
                    "DELETE FROM sync_service.account_waiters WHERE account = $1 AND pipeline_id = $2",
                    &[&key, &pipeline],
                )
                .await?;
            return Ok(lock);
        }
    }
    drop(lock);
    client
        .execute(
            &format!(
                "INSERT INTO sync_service.account_waiters AS w (account, pipeline_id)
                 VALUES ($1, $2)
                 ON CONFLICT (account, pipeline_id) DO UPDATE SET
                   since = CASE WHEN w.seen < now() - interval '{WAITER_GONE_AFTER}'
                                THEN now() ELSE w.since END,
                   seen = now()"
            ),
            &[&key, &pipeline],
        )
        .await?;
    Ok(None)
}

/// Takes the lock of `key` if no one holds it.
async fn try_lock(pool: &Pool, key: &str) -> Result<Option<AccountLock>, ControlError> {
    let client = pool.get().await?;
    let locked: bool = client
        .query_one(
            "SELECT pg_try_advisory_lock(hashtext('stripe-sync account'), hashtext($1))",
            &[&key],
        )
        .await?
        .get(0);
    // Out of the pool either way: a connection holding (or having tried) a session lock is
    // not handed to anyone else; it closes when dropped.
    let connection = Object::take(client);
    Ok(locked.then_some(AccountLock {
        _connection: connection,
    }))
}
