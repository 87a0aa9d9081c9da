//! At most one step per Stripe account at a time, over every worker: a session advisory lock
//! in the control database, held by a connection taken out of the pool, so that whatever ends
//! the step (its end, an error, a crash of the worker) closes the connection and frees it.

use deadpool_postgres::{Object, Pool};

use crate::control::ControlError;

/// A held account lock; dropping it frees the account.
pub struct AccountLock {
    _connection: deadpool_postgres::ClientWrapper,
}

/// Takes the lock of `key` if no one holds it.
pub async fn try_lock(pool: &Pool, key: &str) -> Result<Option<AccountLock>, ControlError> {
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
