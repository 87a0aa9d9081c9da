//! The command line of `sync-engine`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use sync_connector::logging::LogFormat;
use sync_engine_api::time_limit_seconds;
use sync_engine_http::ServeArgs;
use sync_engine_runtime::args::{PipelineArgs, ResolverArgs};

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
    /// Keep the state in this JSON file instead of the destination database (default: its
    /// _sync_state table).
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
