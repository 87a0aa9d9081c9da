//! The destination's connection pool and what its failures mean.

use deadpool_postgres::{Hook, Manager, ManagerConfig, Pool, PoolError, RecyclingMethod};
use pg_connect::FailureKind;

use crate::config::Config;

/// A pool of at most `max_connections` connections.
pub(crate) fn pool(config: &Config) -> Result<Pool, String> {
    config.validate()?;
    let mut target = pg_connect::parse_url(&config.url)?.named("stripe-sync dest-postgres");
    // Every wait on the server is bounded (a locked table, a stuck statement), so a blocked
    // load fails with a reason instead of hanging.
    let mut options = target.pg.get_options().unwrap_or_default().to_owned();
    options.push_str(&format!(
        " -c lock_timeout={} -c statement_timeout={}",
        config.lock_timeout_ms, config.statement_timeout_ms
    ));
    // A batch's staging table (up to 16 MiB of rows) stays in memory instead of spilling to
    // disk at the default 8 MB: the merge of a batch of updates gets about 20 % faster.
    options.push_str(" -c temp_buffers=64MB");
    target.pg.options(options.trim());
    let tls = pg_connect::tls_connector(&target, config.ssl_ca_pem.as_deref())?;
    let manager = Manager::from_config(
        target.pg,
        tls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(config.max_connections.max(1))
        .post_create(Hook::async_fn(|client, _| {
            Box::pin(async move {
                // Raw data (kilobytes an object) is compressed as it is stored: lz4 does it in
                // about a quarter of the CPU of the default pglz (Postgres 14+ built with it; a
                // server without keeps pglz). The values read back are the same.
                if let Err(e) = client
                    .batch_execute("SET default_toast_compression = 'lz4'")
                    .await
                {
                    tracing::debug!(error = %pg_connect::error_text(&e), "lz4 compression unavailable; pglz kept");
                }
                Ok(())
            })
        }))
        .build()
        .map_err(|e| format!("cannot create the connection pool: {e}"))
}

/// A message for a failed connection attempt that says what is wrong and where.
pub(crate) fn explain_connect_error(err: &PoolError, url: &str) -> (FailureKind, String) {
    match err {
        PoolError::Backend(e) => pg_connect::explain(e, url),
        other => (
            FailureKind::Unreachable,
            format!(
                "cannot connect to {}: {other}",
                pg_connect::describe_target(url)
            ),
        ),
    }
}

/// Why the pool gave no connection: Postgres' own reason when it has one.
pub(crate) fn pool_error_text(err: &PoolError) -> String {
    match err {
        PoolError::Backend(e) => pg_connect::error_text(e),
        other => other.to_string(),
    }
}
