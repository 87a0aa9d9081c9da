//! The destination's connection pool and what its failures mean.

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod};
use pg_connect::FailureKind;

use crate::config::Config;

/// A pool of at most `max_connections` connections.
pub fn pool(config: &Config) -> Result<Pool, String> {
    let target = pg_connect::parse_url(&config.url)?;
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
        .build()
        .map_err(|e| format!("cannot create the connection pool: {e}"))
}

/// A message for a failed connection attempt that says what is wrong and where.
pub fn explain_connect_error(err: &PoolError, url: &str) -> (FailureKind, String) {
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
