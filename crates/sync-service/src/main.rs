//! The `sync-service` binary: `serve` (REST), `worker`, `migrate`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use sync_engine::cli::ResolverArgs;
use sync_engine::local::LocalEngine;
use sync_engine::remote::RemoteEngine;
use sync_service::activities::{AnyEngine, PipelineActivities};
use sync_service::api::{self, Api};
use sync_service::control::Control;
use sync_service::temporal::{Temporal, TemporalArgs};

#[derive(Parser)]
#[command(
    name = "sync-service",
    version,
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
    /// A client of serve: list, create, get, update, delete, sync, runs.
    Pipelines(sync_service::client::ClientArgs),
}

#[derive(Args)]
struct DatabaseArgs {
    /// The control database (a libpq URL).
    #[arg(long, env = "SYNC_SERVICE_DATABASE_URL", hide_env_values = true)]
    database_url: String,
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
        env = "SYNC_SERVICE_TASK_QUEUE",
        default_value = "sync-pipelines"
    )]
    task_queue: String,
}

impl TemporalFlags {
    fn args(&self) -> TemporalArgs {
        TemporalArgs {
            address: self.temporal_address.clone(),
            namespace: self.temporal_namespace.clone(),
            task_queue: self.task_queue.clone(),
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
            Some(url) => AnyEngine::Remote(RemoteEngine::new(url, self.engine_token.clone())?),
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
    /// Require `Authorization: Bearer TOKEN` on every route but /health.
    #[arg(long, env = "SYNC_SERVICE_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,
    /// Seconds between reconciles of a ready pipeline.
    #[arg(long, default_value_t = ServeArgs::DEFAULT_RECONCILE_SECS)]
    reconcile_secs: u64,
    /// Seconds before a failed pipeline is tried again.
    #[arg(long, default_value_t = ServeArgs::DEFAULT_RETRY_SECS)]
    retry_secs: u64,
}

impl ServeArgs {
    const DEFAULT_RECONCILE_SECS: u64 = 300;
    const DEFAULT_RETRY_SECS: u64 = 60;
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
}

#[derive(Args)]
struct WorkerArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// A step's time limit in seconds: the engine stops gracefully, the next step resumes.
    #[arg(long, default_value_t = 300.0)]
    step_secs: f64,
}

fn main() -> std::process::ExitCode {
    // The connectors' logging: stderr through the secret redactor.
    sync_connector::logging::init(sync_connector::logging::LogFormat::Human, None);
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<()> {
    match command {
        Command::Pipelines(args) => sync_service::client::run(args).await,
        Command::Migrate(db) => {
            let control = Control::connect(&db.database_url)?;
            let n = control.migrate().await?;
            eprintln!("control database: {n} migration(s) applied");
            Ok(())
        }
        Command::Worker(args) => {
            let common = &args.common;
            let control = Control::connect(&common.database.database_url)?;
            let temporal = Temporal::connect(&common.temporal.args()).await?;
            let activities = PipelineActivities {
                control,
                engine: common.engine.engine()?,
                step_secs: args.step_secs,
            };
            tracing::info!(task_queue = %common.temporal.task_queue, "worker: running");
            temporal.run_worker(activities).await
        }
        Command::Serve(args) => {
            let common = &args.common;
            let api = Arc::new(Api {
                control: Control::connect(&common.database.database_url)?,
                temporal: Temporal::connect(&common.temporal.args()).await?,
                engine: common.engine.engine()?,
                token: args.api_token,
                reconcile_secs: args.reconcile_secs,
                retry_secs: args.retry_secs,
            });
            listen(args.listen, api::router(api)).await
        }
        Command::Webhook(args) => {
            let api = Arc::new(Api {
                control: Control::connect(&args.database.database_url)?,
                temporal: Temporal::connect(&args.temporal.args()).await?,
                engine: EngineFlags::default().engine()?,
                token: None,
                reconcile_secs: ServeArgs::DEFAULT_RECONCILE_SECS,
                retry_secs: ServeArgs::DEFAULT_RETRY_SECS,
            });
            listen(args.listen, api::webhook_router(api)).await
        }
    }
}

async fn listen(address: SocketAddr, router: axum::Router) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving HTTP")
}
