//! Hard deletes remember what they deleted: `_tombstones` keeps, per stream and key, the
//! version of the deletion, so a late, older version of a deleted object (Stripe delivers out
//! of order) never brings its row back. Entries are kept as long as Stripe keeps events.

use crate::ident::qualified;

pub(crate) const TABLE: &str = "_tombstones";

/// Stripe keeps events 30 days: no older version can arrive later than that.
pub(crate) const RETENTION_DAYS: u32 = 30;

pub(crate) fn create_sql(schema: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (stream text NOT NULL, key text NOT NULL, \
         version timestamptz, deleted_at timestamptz NOT NULL DEFAULT now(), \
         PRIMARY KEY (stream, key))",
        qualified(schema, TABLE)
    )
}

/// Forgets tombstones older than the retention.
pub(crate) fn prune_sql(schema: &str) -> String {
    format!(
        "DELETE FROM {} WHERE deleted_at < now() - interval '{RETENTION_DAYS} days'",
        qualified(schema, TABLE)
    )
}
