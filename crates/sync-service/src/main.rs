//! The `sync-service` binary: `serve` (REST), `worker`, `migrate`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use sync_engine_client::RemoteEngine;
use sync_engine_runtime::args::ResolverArgs;
use sync_engine_runtime::local::LocalEngine;
use sync_service::activities::{AnyEngine, PipelineActivities};
use sync_service::api::{self, Api};
use sync_service::budget::AccountBudget;
use sync_service::control::Control;
use sync_service::database_url::{self, Origin};
use sync_service::temporal::{Lanes, Temporal, TemporalArgs};
use sync_service::workflow::PipelineInput;

#[derive(Parser)]
#[command(
    name = "sync-service",
    version = build_info::VERSION,
    about = "Stripe sync pipelines as durable Temporal workflows"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The REST API.
    Serve(ServeArgs),
    /// Webhook ingress only (POST /webhooks/{pipeline_id}), for a separate deployment.
    Webhook(WebhookArgs),
    /// A worker: runs pipeline workflows and their engine steps.
    Worker(WorkerArgs),
    /// Creates or upgrades the control database's schema (sync_service).
    Migrate(DatabaseArgs),
    /// A client of serve: list, create, get, update, delete, sync, sync-batch, reconcile,
    /// check, setup, teardown, runs.
    Pipelines(sync_service::client::ClientArgs),
}

#[derive(Args)]
struct DatabaseArgs {
    /// The control database (a libpq URL or key=value string); absent: DATABASE_URL, else
    /// where psql would connect (libpq's PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE,
    /// PGSSLMODE… and its defaults, ~/.pgpass for the password).
    #[arg(long, env = "SYNC_SERVICE_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Refused: the reference kept pipelines in files there; here they are in the control
    /// database (--database-url).
    #[arg(long, value_name = "DIR", value_parser = refuse_data_dir)]
    data_dir: Option<String>,
}

fn refuse_data_dir(_: &str) -> Result<String, String> {
    Err("pipelines are kept in the control database (Postgres), not in files: give --database-url, or DATABASE_URL, or libpq's PG* variables".to_owned())
}

impl DatabaseArgs {
    /// The control database, and its URL. One found by default (not given) is tried at once,
    /// so that a wrong guess is named before anything else runs.
    async fn control(&self) -> Result<(Control, String)> {
        let found = database_url::resolve(self.database_url.as_deref(), &|name| {
            std::env::var(name).ok()
        })
        .context("the control database")?;
        let whence = match &found.origin {
            Origin::Given => None,
            Origin::DatabaseUrl => Some(format!(
                "DATABASE_URL ({})",
                pg_connect::describe_target(&found.url)
            )),
            Origin::Libpq(settings) => Some(format!(
                "no --database-url, SYNC_SERVICE_DATABASE_URL or DATABASE_URL; libpq's environment and defaults give {settings}"
            )),
        };
        let control = Control::connect(&found.url).map_err(|e| match &whence {
            Some(whence) => anyhow::anyhow!("the control database ({whence}): {e}"),
            None => anyhow::anyhow!("{e}"),
        })?;
        if let Some(whence) = whence {
            control.ping().await.map_err(|e| {
                anyhow::anyhow!(
                    "the control database ({whence}) does not answer: {e}; give --database-url"
                )
            })?;
        }
        Ok((control, found.url))
    }
}

#[derive(Args)]
struct TemporalFlags {
    /// Temporal's frontend, host:port.
    #[arg(long, env = "TEMPORAL_ADDRESS", default_value = "127.0.0.1:7233")]
    temporal_address: String,
    /// Temporal namespace.
    #[arg(long, env = "TEMPORAL_NAMESPACE", default_value = "default")]
    temporal_namespace: String,
    /// The task queue pipelines run on.
    #[arg(
        long,
        visible_alias = "temporal-task-queue",
        env = "SYNC_SERVICE_TASK_QUEUE",
        default_value = "sync-pipelines"
    )]
    task_queue: String,
    /// The task queue of the live lane (webhook events), apart so that they never wait
    /// behind backfill steps.
    #[arg(
        long,
        env = "SYNC_SERVICE_LIVE_TASK_QUEUE",
        default_value = "sync-live"
    )]
    live_task_queue: String,
}

impl TemporalFlags {
    fn args(&self) -> TemporalArgs {
        TemporalArgs {
            address: self.temporal_address.clone(),
            namespace: self.temporal_namespace.clone(),
            task_queue: self.task_queue.clone(),
            live_task_queue: self.live_task_queue.clone(),
        }
    }
}

/// The longest wait between two steps (a day). Workflows count time in milliseconds from the
/// Unix epoch; an unbounded wait would overflow there.
const MAX_WAIT_SECS: u64 = 86_400;
/// The longest time between reconciles (a year).
const MAX_RECONCILE_SECS: u64 = 365 * 86_400;

/// The timers a pipeline's workflow starts with (set by whichever process starts it: serve,
/// or webhook ingress for a workflow that had ended).
#[derive(Args)]
struct WorkflowFlags {
    /// Seconds between catch-up steps of a ready pipeline (each reads Stripe's events since
    /// the last; at most 86400). Like the two below, it applies to the pipelines whose workflow
    /// starts from now on: a running workflow keeps the timers it started with.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(..=MAX_WAIT_SECS))]
    poll_secs: u64,
    /// Seconds between full reconciles (every object read again; new, changed and missed
    /// rows fixed; at most 31536000, a year); 0: never (POST /pipelines/{id}/reconcile still
    /// works).
    #[arg(long, default_value_t = 7 * 24 * 3600, value_parser = clap::value_parser!(u64).range(..=MAX_RECONCILE_SECS))]
    reconcile_secs: u64,
    /// Seconds before a failed pipeline is tried again (at most 86400).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(..=MAX_WAIT_SECS))]
    retry_secs: u64,
}

impl WorkflowFlags {
    fn input(&self, temporal: &TemporalFlags) -> PipelineInput {
        PipelineInput {
            poll_secs: self.poll_secs,
            reconcile_secs: self.reconcile_secs,
            retry_secs: self.retry_secs,
            live_task_queue: Some(temporal.live_task_queue.clone()),
            ..Default::default()
        }
    }
}

#[derive(Args, Default)]
struct EngineFlags {
    /// A `sync-engine serve` to run steps on; absent: the engine runs in this process.
    #[arg(long, env = "SYNC_ENGINE_URL")]
    engine_url: Option<String>,
    /// The bearer token of that engine.
    #[arg(long, env = "SYNC_ENGINE_TOKEN", hide_env_values = true)]
    engine_token: Option<String>,
    #[command(flatten)]
    resolver: ResolverArgs,
}

impl EngineFlags {
    fn engine(&self) -> Result<AnyEngine> {
        Ok(match &self.engine_url {
            Some(url) => {
                self.resolver
                    .refused_with_engine_url(url)
                    .map_err(anyhow::Error::msg)?;
                AnyEngine::Remote(RemoteEngine::new(url, self.engine_token.clone())?)
            }
            None if self.engine_token.is_some() => anyhow::bail!(
                "--engine-token (or SYNC_ENGINE_TOKEN) without --engine-url (or SYNC_ENGINE_URL): the engine runs in this process and takes no token"
            ),
            None => AnyEngine::Local(LocalEngine::from_args(
                &self.resolver,
                Duration::from_secs(120),
            )?),
        })
    }
}

/// What the API server and the worker both take.
#[derive(Args)]
struct CommonArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(flatten)]
    temporal: TemporalFlags,
    #[command(flatten)]
    engine: EngineFlags,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Address to listen on.
    #[arg(long, env = "SYNC_SERVICE_LISTEN", default_value = "127.0.0.1:4020")]
    listen: SocketAddr,
    /// Port to listen on, on the loopback (127.0.0.1:PORT); --listen for another address.
    #[arg(long, conflicts_with = "listen")]
    port: Option<u16>,
    /// Require `Authorization: Bearer TOKEN` on every route but /health.
    #[arg(long, env = "SYNC_SERVICE_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,
    /// Without --api-token, a name (NAME or NAME:PORT) requests may give as Host besides this
    /// server's own (the loopback names, or its address); also the public name behind a proxy
    /// that rewrites Host. Repeat or separate with commas.
    #[arg(long, value_name = "NAME", value_delimiter = ',', value_parser = sync_web_guard::same_site::allowed_host)]
    allowed_host: Vec<sync_web_guard::same_site::AllowedHost>,
    /// The console's SQL page connects with this URL instead of each destination's own: a
    /// role with only SELECT on the pipelines' schemas. Destinations in another database
    /// are then refused on that page (default: SYNC_SERVICE_SQL_READER_URL).
    #[arg(long, value_name = "URL", env = "SYNC_SERVICE_SQL_READER_URL", hide_env_values = true, value_parser = SqlReaderParser)]
    sql_reader_url: Option<sync_console::SqlReader>,
    #[command(flatten)]
    workflow: WorkflowFlags,
}

/// Reads `--sql-reader-url`; its errors never repeat the value (clap's own would, password
/// and all).
#[derive(Clone)]
struct SqlReaderParser;

impl clap::builder::TypedValueParser for SqlReaderParser {
    type Value = sync_console::SqlReader;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<sync_console::SqlReader, clap::Error> {
        let refused = |why: String| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("--sql-reader-url: {why}\n"),
            )
            .with_cmd(cmd)
        };
        let url = value
            .to_str()
            .ok_or_else(|| refused("not UTF-8".to_owned()))?;
        let reader = sync_console::SqlReader::parse(url).map_err(refused)?;
        if let Some(password) = reader.password() {
            sync_connector::redact::register_secret(&password);
        }
        Ok(reader)
    }
}

#[derive(Args)]
struct WebhookArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(flatten)]
    temporal: TemporalFlags,
    /// Address to listen on.
    #[arg(
        long,
        env = "SYNC_SERVICE_WEBHOOK_LISTEN",
        default_value = "127.0.0.1:4030"
    )]
    listen: SocketAddr,
    /// Port to listen on, on the loopback (127.0.0.1:PORT); --listen for another address.
    #[arg(long, conflicts_with = "listen")]
    port: Option<u16>,
    #[command(flatten)]
    workflow: WorkflowFlags,
}

#[derive(Args)]
struct WorkerArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// A step's time limit in seconds: the engine stops gracefully, the next step resumes
    /// (above 0, at most 600: a step's activity is stopped after 15 minutes).
    #[arg(long, default_value_t = 300.0, value_parser = step_seconds)]
    step_secs: f64,
    /// The lanes this worker serves: backfill (workflows and their steps, --task-queue), live
    /// (webhook events, --live-task-queue), or both.
    #[arg(long, value_delimiter = ',', default_value = "backfill,live")]
    lanes: Vec<Lane>,
    /// Requests per second allowed to one Stripe account, shared by every pipeline of it on
    /// every worker (a token bucket per account in the control database); default: the
    /// source's rate_limit, else Stripe's default for the key (25 test, 100 live).
    #[arg(long, value_parser = positive_rps)]
    account_rps: Option<f64>,
    /// Engine steps this worker runs at once (each runs a source and a destination); more wait
    /// in Temporal's queue for any worker.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    max_concurrent_steps: u64,
    /// Do not share a rate budget between the runs of one account (each engine run then keeps
    /// its own limit).
    #[arg(long, conflicts_with = "account_rps")]
    no_shared_budget: bool,
}

/// The longest step: its graceful stop must end well within the activity's 15 minutes.
const MAX_STEP_SECS: f64 = 600.0;

fn step_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 && secs <= MAX_STEP_SECS => Ok(secs),
        _ => Err(format!(
            "{text:?} is not a number of seconds above 0 and at most {MAX_STEP_SECS}"
        )),
    }
}

fn positive_rps(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rps) if rps.is_finite() && rps > 0.0 => Ok(rps),
        _ => Err(format!(
            "{text:?} is not a positive number of requests per second"
        )),
    }
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Lane {
    Backfill,
    Live,
}

fn main() -> std::process::ExitCode {
    // The connectors' logging: stderr through the secret redactor.
    if let Err(e) = sync_connector::logging::init(sync_connector::logging::LogFormat::Human, None) {
        eprintln!("error: {e}");
        return std::process::ExitCode::from(2);
    }
    let cli = Cli::parse();
    sync_connector::binary::run_main(async { run(cli.command).await.map(|()| 0) })
}

async fn run(command: Command) -> Result<()> {
    match command {
        Command::Pipelines(args) => sync_service::client::run(args).await,
        Command::Migrate(db) => {
            let (control, _) = db.control().await?;
            let n = control.migrate().await?;
            eprintln!("control database: {n} migration(s) applied");
            Ok(())
        }
        Command::Worker(args) => {
            let common = &args.common;
            let (control, url) = common.database.control().await?;
            let temporal = Temporal::connect(&common.temporal.args()).await?;
            let activities = PipelineActivities {
                control,
                engine: Arc::new(common.engine.engine()?),
                step_secs: args.step_secs,
                budget: (!args.no_shared_budget).then_some(AccountBudget {
                    url,
                    rps: args.account_rps,
                }),
                accounts: Default::default(),
                catalogs: Default::default(),
            };
            let lanes = Lanes {
                backfill: args.lanes.contains(&Lane::Backfill),
                live: args.lanes.contains(&Lane::Live),
            };
            tracing::info!(
                task_queue = %common.temporal.task_queue,
                live_task_queue = %common.temporal.live_task_queue,
                "worker: running"
            );
            temporal
                .run_worker(activities, lanes, args.max_concurrent_steps as usize)
                .await
        }
        Command::Serve(args) => {
            let common = &args.common;
            let (control, _) = common.database.control().await?;
            let api = Arc::new(Api {
                control,
                temporal: Temporal::connect(&common.temporal.args()).await?,
                engine: common.engine.engine()?,
                token: args.api_token,
                workflow: args.workflow.input(&common.temporal),
                sql_reader: args.sql_reader_url,
            });
            listen(listen_address(args.listen, args.port), |bound| {
                api::router(api, bound, &args.allowed_host)
            })
            .await
        }
        Command::Webhook(args) => {
            let (control, _) = args.database.control().await?;
            let api = Arc::new(Api {
                control,
                temporal: Temporal::connect(&args.temporal.args()).await?,
                engine: EngineFlags::default().engine()?,
                token: None,
                workflow: args.workflow.input(&args.temporal),
                sql_reader: None,
            });
            listen(listen_address(args.listen, args.port), |_| {
                api::webhook_router(api)
            })
            .await
        }
    }
}

/// `--listen`, or the loopback on `--port` (they exclude each other).
fn listen_address(listen: SocketAddr, port: Option<u16>) -> SocketAddr {
    match port {
        Some(port) => SocketAddr::from(([127, 0, 0, 1], port)),
        None => listen,
    }
}

/// Serves the router built for the address bound (port 0 picks one).
async fn listen(
    address: SocketAddr,
    router: impl FnOnce(SocketAddr) -> axum::Router,
) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    let bound = listener.local_addr()?;
    tracing::info!("listening on http://{bound}");
    axum::serve(listener, router(bound))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving HTTP")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_runs_at_least_one_step_at_once() {
        let parse = |n: &str| {
            Cli::try_parse_from([
                "sync-service",
                "worker",
                "--database-url",
                "postgres://x/y",
                "--max-concurrent-steps",
                n,
            ])
            .map(|_| ())
        };
        assert!(parse("0").is_err());
        assert!(parse("1").is_ok());
    }

    #[test]
    fn an_account_budget_without_sharing_is_refused_not_dropped() {
        let parsed = Cli::try_parse_from([
            "sync-service",
            "worker",
            "--database-url",
            "postgres://x/y",
            "--no-shared-budget",
            "--account-rps",
            "5",
        ]);
        assert!(parsed.is_err());
    }

    #[test]
    fn a_step_must_end_within_its_activity_timeout() {
        for bad in ["0", "-5", "NaN", "inf", "601", "3600"] {
            assert!(step_seconds(bad).is_err(), "{bad}");
        }
        assert_eq!(step_seconds("0.5"), Ok(0.5));
        assert_eq!(step_seconds("600"), Ok(600.0));
    }

    #[test]
    fn engine_flags_that_would_be_ignored_are_refused() {
        let mut flags = EngineFlags {
            engine_url: Some("http://127.0.0.1:9".into()),
            ..Default::default()
        };
        flags.resolver.no_connectors_from_path = true;
        let e = flags.engine().map(|_| ()).unwrap_err().to_string();
        assert!(e.contains("--connectors-*"), "{e}");
        let flags = EngineFlags {
            engine_token: Some("t".into()),
            ..Default::default()
        };
        let e = flags.engine().map(|_| ()).unwrap_err().to_string();
        assert!(e.contains("--engine-token"), "{e}");
    }
}
