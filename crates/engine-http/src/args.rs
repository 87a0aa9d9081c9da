//! The flags of `sync-engine serve`.

use std::path::PathBuf;

use clap::Args;
use sync_engine_runtime::args::{ResolverArgs, connector_timeout_seconds};

/// Where and how the server listens, and what it serves.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on; only this machine can connect unless you choose another.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (default: PORT, else 3000; 0 picks a free one).
    #[arg(long, env = "PORT", default_value = "3000")]
    pub port: u16,
    /// Require `Authorization: Bearer TOKEN` on every route but /health (default:
    /// SYNC_ENGINE_API_TOKEN).
    #[arg(long, env = "SYNC_ENGINE_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// Syncs running at once; more are answered 429 (default: 4 per core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_concurrent_runs: Option<u64>,
    /// A connector that neither writes output nor exits for this long is stopped as hung (1 to
    /// 86400).
    #[arg(long, value_name = "SECONDS", default_value = "600", value_parser = connector_timeout_seconds)]
    pub connector_timeout: f64,
    /// Without --api-token, a name (NAME or NAME:PORT) requests may give as Host besides this
    /// server's own (the loopback names, or its address); also the public name behind a proxy
    /// that rewrites Host. Repeat or separate with commas.
    #[arg(long, value_name = "NAME", value_delimiter = ',', value_parser = sync_web_guard::same_site::allowed_host)]
    pub allowed_host: Vec<sync_web_guard::same_site::AllowedHost>,
    /// A pipeline file (as `sync --config` takes) whose source's catalog the web explorer at
    /// /explorer shows, with row counts from its destination when that is Postgres.
    #[arg(long, value_name = "FILE")]
    pub explorer_config: Option<PathBuf>,
    /// The explorer's SQL page connects with this URL instead of the destination's own: a
    /// role with only SELECT on its schema. A destination in another database is then
    /// refused on that page (default: SYNC_ENGINE_SQL_READER_URL).
    #[arg(
        long,
        value_name = "URL",
        env = "SYNC_ENGINE_SQL_READER_URL",
        hide_env_values = true
    )]
    pub sql_reader_url: Option<String>,
    #[command(flatten)]
    pub resolver: ResolverArgs,
}
