//! The command line of `sync-engine`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use sync_connector::logging::LogFormat;

#[derive(Debug, Parser)]
#[command(
    name = "sync-engine",
    version = build_info::VERSION,
    about = "Sync Stripe (or any source connector) into Postgres (or any destination connector), resumably.",
    arg_required_else_help = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Without a subcommand, `sync-engine --port N …` serves, as `sync-engine serve --port N …`.
    #[command(
        flatten,
        next_help_heading = "Serve (without a subcommand, as `serve`)"
    )]
    pub serve: ServeArgs,
    /// Format of the engine's logs on stderr.
    #[arg(long, global = true, value_enum, default_value = "human")]
    pub log_format: LogFormat,
    /// Log level or filter (default: RUST_LOG, else info).
    #[arg(long, global = true)]
    pub log_level: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a sync: setup, then read from the source and write to the destination, checkpointing
    /// every committed state. Rerun the same command to continue incrementally.
    Sync(SyncArgs),
    /// Check that both connectors accept their configs and can connect.
    Check(PipelineArgs),
    /// Print the source's catalog (after stream selection).
    Discover(PipelineArgs),
    /// Create the destination's tables for the selected streams.
    Setup(SetupArgs),
    /// Remove this sync's state, then what setup created (stripe: its webhook endpoint;
    /// dest-postgres: its tables and schema).
    Teardown(TeardownArgs),
    /// List the connectors that resolve, and from where.
    Connectors(ResolverArgs),
    /// Serve the engine over HTTP: every operation as a route, streaming NDJSON (see
    /// docs/http-api.md).
    Serve(ServeArgs),
}

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
    #[arg(long, value_name = "SECONDS", default_value = "600", value_parser = timeout_seconds)]
    pub connector_timeout: f64,
    /// Without --api-token, a name (NAME or NAME:PORT) requests may give as Host besides this
    /// server's own (the loopback names, or its address); also the public name behind a proxy
    /// that rewrites Host. Repeat or separate with commas.
    #[arg(long, value_name = "NAME", value_delimiter = ',', value_parser = sync_console::same_site::allowed_host)]
    pub allowed_host: Vec<sync_console::same_site::AllowedHost>,
    /// A pipeline file (as `sync --config` takes) whose source's catalog the web explorer at
    /// /explorer shows, with row counts from its destination when that is Postgres.
    #[arg(long, value_name = "FILE")]
    pub explorer_config: Option<PathBuf>,
    #[command(flatten)]
    pub resolver: ResolverArgs,
}

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
    /// Stripe API base URL (a simulator, for tests and the demo).
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
    /// Requests per second to Stripe for the whole account (the stripe source's rate_limit).
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
    #[arg(long, value_name = "SECONDS", value_parser = timeout_seconds)]
    pub connector_timeout: Option<f64>,
    #[command(flatten)]
    pub resolver: ResolverArgs,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// The connector timeout when none is given, in seconds.
pub const DEFAULT_CONNECTOR_TIMEOUT_SECS: f64 = 600.0;

/// The longest time limit, in seconds (a week): a longer run is better left to a rerun, which
/// continues where it stopped. Beyond what a clock can add, a limit would panic.
pub const MAX_TIME_LIMIT_SECS: f64 = 604_800.0;

/// The longest connector timeout, in seconds (a day of silence is a hang).
pub const MAX_CONNECTOR_TIMEOUT_SECS: f64 = 86_400.0;

/// Whether `secs` can be a time limit: above zero and at most [`MAX_TIME_LIMIT_SECS`].
pub fn is_time_limit(secs: f64) -> bool {
    secs.is_finite() && secs > 0.0 && secs <= MAX_TIME_LIMIT_SECS
}

/// A time limit in seconds, as [`is_time_limit`] takes it.
pub fn time_limit_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(secs) if is_time_limit(secs) => Ok(secs),
        _ => Err(format!(
            "{text:?} is not a number of seconds above 0 and at most {MAX_TIME_LIMIT_SECS}"
        )),
    }
}

/// A timeout in seconds: at least one, so a slow start is not taken for a hang, and at most
/// [`MAX_CONNECTOR_TIMEOUT_SECS`].
fn timeout_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(secs) if (1.0..=MAX_CONNECTOR_TIMEOUT_SECS).contains(&secs) => Ok(secs),
        _ => Err(format!(
            "{text:?} is not a number of seconds from 1 to {MAX_CONNECTOR_TIMEOUT_SECS}"
        )),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputMode {
    /// A live display on a terminal, NDJSON lines otherwise (as ndjson), and a summary on stderr.
    Auto,
    /// NDJSON on stdout (committed states, stream statuses, progress, the eof), summary on
    /// stderr.
    Ndjson,
    /// Progress as plain text on stderr, and the summary; nothing on stdout.
    Plain,
}

#[derive(Debug, Clone, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    #[command(flatten)]
    pub checkpoint: CheckpointArgs,
    /// Forget the saved state and start over.
    #[arg(long)]
    pub reset: bool,
    /// Stop gracefully after this many seconds (at most 604800, a week); a rerun continues.
    #[arg(long, value_name = "SECONDS", value_parser = time_limit_seconds)]
    pub time_limit: Option<f64>,
    /// Stop gracefully after this many source states.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub state_limit: Option<u64>,
    /// After the backfill, stay live: apply Stripe changes as they happen (events polled,
    /// webhooks received) until SIGINT or SIGTERM; dest-postgres commits every 250 ms.
    #[arg(long)]
    pub live: bool,
    #[arg(long, value_enum, default_value = "auto")]
    pub output: OutputMode,
    /// Progress as plain text on stderr (a line every 2 s and a last one), instead of the live
    /// display; nothing on stdout. The same as --output plain.
    #[arg(long, conflicts_with = "output")]
    pub plain: bool,
    /// Neither read nor save a checkpoint: the run starts from scratch and saves nothing (nor
    /// takes the run lock, nor keeps connectors' config updates).
    #[arg(long, conflicts_with_all = ["reset", "state_file", "sync_id"])]
    pub no_state: bool,
    /// Refused: the reference implementation's live events over the Stripe CLI's websocket.
    /// Use --live (events polled, and webhooks with the source's webhook_listen).
    #[arg(long)]
    pub websocket: bool,
}

impl SyncArgs {
    /// The output mode `--output` and `--plain` choose.
    pub fn output_mode(&self) -> OutputMode {
        if self.plain {
            OutputMode::Plain
        } else {
            self.output
        }
    }
}

/// Where a sync's checkpoint is kept, and under which key.
#[derive(Debug, Clone, Default, Args)]
pub struct CheckpointArgs {
    /// Keep the state in this JSON file instead of the destination database.
    #[arg(long, value_name = "PATH")]
    pub state_file: Option<PathBuf>,
    /// The key of this sync's state (default: derived from the source and destination).
    #[arg(long)]
    pub sync_id: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct SetupArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// The sync the tables are set up for (default: derived from the source and destination,
    /// as for sync): dest-postgres registers it as a user of each table.
    #[arg(long)]
    pub sync_id: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct TeardownArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// The checkpoint to remove: the one `sync` kept with the same flags.
    #[command(flatten)]
    pub checkpoint: CheckpointArgs,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parses(args: &[&str]) -> Result<Cli, String> {
        Cli::try_parse_from(["sync-engine"].iter().chain(args)).map_err(|e| e.to_string())
    }

    #[test]
    fn a_number_that_would_do_nothing_or_something_else_is_refused_naming_its_flag() {
        for (args, flag) in [
            (&["sync", "--time-limit", "nan"][..], "--time-limit"),
            (&["sync", "--time-limit", "inf"], "--time-limit"),
            (&["sync", "--time-limit", "0"], "--time-limit"),
            (&["sync", "--time-limit", "1e308"], "--time-limit"),
            (&["sync", "--time-limit", "604800.5"], "--time-limit"),
            (
                &["check", "--connector-timeout", "1e308"],
                "--connector-timeout",
            ),
            (
                &["serve", "--connector-timeout", "86401"],
                "--connector-timeout",
            ),
            (&["sync", "--state-limit", "0"], "--state-limit"),
            (
                &["check", "--connector-timeout", "0.5"],
                "--connector-timeout",
            ),
            (
                &["serve", "--max-concurrent-runs", "0"],
                "--max-concurrent-runs",
            ),
            (
                &["serve", "--connector-timeout", "0"],
                "--connector-timeout",
            ),
        ] {
            let e = parses(args).map(|_| ()).unwrap_err();
            assert!(e.contains(flag), "{args:?}: {e}");
        }
        for args in [
            &["sync", "--time-limit", "0.5", "--state-limit", "1"][..],
            &[
                "sync",
                "--time-limit",
                "604800",
                "--connector-timeout",
                "86400",
            ],
            &["teardown", "--sync-id", "prod", "--state-file", "s.json"],
            &["serve", "--max-concurrent-runs", "1"],
        ] {
            assert!(parses(args).is_ok(), "{args:?}");
        }
    }
}
