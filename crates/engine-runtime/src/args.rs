//! The flags a pipeline is given by (a pipeline file, per-side configs, shortcuts) and how
//! connectors are looked up: shared by `sync-engine`'s commands and sync-service's.

use std::path::PathBuf;

use clap::Args;

/// Where the operation runs: in this process, or at a `sync-engine serve`.
#[derive(Debug, Clone, Default, Args)]
pub struct RemoteArgs {
    /// Run the operation through a `sync-engine serve` at this URL instead of in this process
    /// (the checkpoint is still kept here).
    #[arg(long, value_name = "URL")]
    pub engine_url: Option<String>,
    /// Bearer token for --engine-url (default: SYNC_ENGINE_API_TOKEN).
    #[arg(long, env = "SYNC_ENGINE_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
}

/// How connectors are looked up (see `resolve`).
#[derive(Debug, Clone, Default, Args)]
pub struct ResolverArgs {
    /// Connector commands: JSON or a file, e.g. {"source-x": "python3 ./x.py"}; keys
    /// source-NAME and destination-NAME.
    #[arg(long, value_name = "JSON|FILE")]
    pub connectors_from_command_map: Option<String>,
    /// Do not look for connectors on PATH.
    #[arg(long)]
    pub no_connectors_from_path: bool,
    /// Allow running connectors from package registries (PyPI through uvx or pipx, npm through npx).
    #[arg(long)]
    pub connectors_from_registry: bool,
    /// Allow running connectors from npm only (through npx): the reference implementation's
    /// lookup (@stripe/sync-source-NAME, @stripe/sync-destination-NAME).
    #[arg(long)]
    pub connectors_from_npm: bool,
}

impl ResolverArgs {
    /// Refuses these flags for an engine at `url`: it looks connectors up itself, so they would
    /// do nothing here.
    pub fn refused_with_engine_url(&self, url: &str) -> Result<(), String> {
        if self.connectors_from_command_map.is_some()
            || self.no_connectors_from_path
            || self.connectors_from_registry
            || self.connectors_from_npm
        {
            return Err(format!(
                "--engine-url: connectors are looked up by the engine at {url}; give the --connectors-* flags to its serve instead"
            ));
        }
        Ok(())
    }
}

/// The pipeline: its connectors, their configs and streams, from a file, flags and the
/// environment.
#[derive(Debug, Clone, Default, Args)]
pub struct PipelineArgs {
    /// The pipeline, as a JSON file or inline JSON (starting with {):
    /// {"source":{"name":…,"config":{…}},"destination":{…},"streams":[…]}; a side's config keys
    /// may also sit beside its name, as the reference implementation writes them.
    #[arg(long, value_name = "FILE|JSON")]
    pub config: Option<PathBuf>,
    /// Source connector name (default: stripe).
    #[arg(long)]
    pub source: Option<String>,
    /// Source config: inline JSON or a file; merged over the config file's.
    #[arg(long, value_name = "JSON|FILE")]
    pub source_config: Option<String>,
    /// Destination connector name (default: postgres).
    #[arg(long)]
    pub destination: Option<String>,
    /// Destination config: inline JSON or a file; merged over the config file's.
    #[arg(long, value_name = "JSON|FILE")]
    pub destination_config: Option<String>,
    /// Stripe API key for the stripe source (default: STRIPE_API_KEY, when no config gives one).
    #[arg(long)]
    pub stripe_api_key: Option<String>,
    /// Stripe API base URL, e.g. a simulator's (default: https://api.stripe.com).
    #[arg(long)]
    pub stripe_base_url: Option<String>,
    /// Postgres URL for the postgres destination (default: DATABASE_URL or POSTGRES_URL, when no
    /// config gives one; both set to different URLs is an error).
    #[arg(long, visible_alias = "database-url")]
    pub postgres_url: Option<String>,
    /// Destination schema (postgres destination; default stripe, where the reference
    /// implementation's --postgres-schema defaults to public).
    #[arg(long, visible_alias = "postgres-schema")]
    pub schema: Option<String>,
    /// Requests per second to Stripe for the whole account (the stripe source's rate_limit;
    /// default: Stripe's limit for the key, 100 live, 25 test).
    #[arg(long, value_name = "N")]
    pub stripe_rate_limit: Option<u64>,
    /// Streams to sync, comma separated (default: all the source offers).
    #[arg(long, value_delimiter = ',')]
    pub streams: Option<Vec<String>>,
    /// Stop each stream's backfill after this many records (a sample).
    #[arg(long)]
    pub backfill_limit: Option<u64>,
    /// A connector that neither writes output nor exits for this long is stopped as hung
    /// (default: 600; 1 to 86400).
    #[arg(long, value_name = "SECONDS", value_parser = connector_timeout_seconds)]
    pub connector_timeout: Option<f64>,
    #[command(flatten)]
    pub resolver: ResolverArgs,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// The connector timeout when none is given, in seconds.
pub const DEFAULT_CONNECTOR_TIMEOUT_SECS: f64 = 600.0;

/// The longest connector timeout, in seconds (a day of silence is a hang).
pub const MAX_CONNECTOR_TIMEOUT_SECS: f64 = 86_400.0;

/// A connector timeout in seconds: at least one, so a slow start is not taken for a hang, and at most
/// [`MAX_CONNECTOR_TIMEOUT_SECS`].
pub fn connector_timeout_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(secs) if (1.0..=MAX_CONNECTOR_TIMEOUT_SECS).contains(&secs) => Ok(secs),
        _ => Err(format!(
            "{text:?} is not a number of seconds from 1 to {MAX_CONNECTOR_TIMEOUT_SECS}"
        )),
    }
}
