//! `sync-engine`: resolves a source and a destination connector, runs them as child processes
//! joined by the engine, and persists only the checkpoints the destination has committed.

mod cli;
mod connector;
mod lines;
mod pipe;
mod report;
mod resolve;
mod settings;
mod store;
mod tracker;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use clap::Parser;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sync_protocol::{
    Catalog, ConfiguredCatalog, ConfiguredStream, Message, RunStatus, Status, SyncMode, SyncState,
};

use crate::cli::{Cli, Command, PipelineArgs, ResolverArgs, SyncArgs};
use crate::connector::{Connector, Dialect};
use crate::resolve::{Resolver, Role};
use crate::settings::{Pipeline, StreamChoice};
use crate::store::StateStore;

/// Exit codes of `sync-engine`.
mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const USAGE: u8 = 2;
    /// Stopped by a limit or a signal before the end; a rerun continues.
    pub const STOPPED: u8 = 3;
}

/// An error in what the user asked for (flags, configs, stream names): exit 2.
#[derive(Debug)]
struct Usage(String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

fn usage(e: anyhow::Error) -> anyhow::Error {
    anyhow::Error::new(Usage(format!("{e:#}")))
}

fn main() -> ExitCode {
    sync_connector::redact::install_panic_hook();
    let cli = Cli::parse();
    sync_connector::logging::init(cli.log_format, cli.log_level.as_deref());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILED);
        }
    };
    let result = runtime.block_on(dispatch(cli.command));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let message = sync_connector::redact::redact(&format!("{e:#}")).into_owned();
            eprintln!("error: {message}");
            ExitCode::from(if e.downcast_ref::<Usage>().is_some() {
                exit::USAGE
            } else {
                exit::FAILED
            })
        }
    }
}

async fn dispatch(command: Command) -> Result<u8> {
    match command {
        Command::Sync(args) => sync(args).await,
        Command::Check(args) => check(args).await,
        Command::Discover(args) => discover_command(args).await,
        Command::Setup(args) => setup_command(args).await,
        Command::Teardown(args) => teardown_command(args).await,
        Command::Connectors(args) => connectors(args),
    }
}

/// The pipeline's connectors, opened (spec run) and their configs validated.
struct Opened {
    pipeline: Pipeline,
    source: Connector,
    destination: Connector,
    source_config: Value,
    destination_config: Value,
}

async fn open(args: &PipelineArgs) -> Result<Opened> {
    let pipeline = settings::pipeline(args).map_err(usage)?;
    let resolver = Resolver::new(&args.resolver).map_err(usage)?;
    let source = resolver
        .resolve(Role::Source, &pipeline.source.name)
        .map_err(usage)?;
    let destination = resolver
        .resolve(Role::Destination, &pipeline.destination.name)
        .map_err(usage)?;
    let (source, destination) = tokio::try_join!(
        Connector::open(Role::Source, source),
        Connector::open(Role::Destination, destination)
    )?;
    let source_config = Value::Object(pipeline.source.config.clone());
    let destination_config = Value::Object(pipeline.destination.config.clone());
    source.validate_config(&source_config).map_err(usage)?;
    destination
        .validate_config(&destination_config)
        .map_err(usage)?;
    Ok(Opened {
        pipeline,
        source,
        destination,
        source_config,
        destination_config,
    })
}

/// The source's catalog.
async fn discover(o: &Opened) -> Result<Catalog> {
    let config = o.source.file("source-config.json", &o.source_config)?;
    let messages = o.source.run("discover", &[("config", &config)]).await?;
    let mut failure = None;
    for m in messages {
        match m {
            Message::Catalog(c) => return Ok(c),
            Message::ConnectionStatus(s) if s.status == Status::Failed => failure = s.message,
            _ => {}
        }
    }
    Err(anyhow!(
        "{} discover printed no catalog{}",
        o.source.name(),
        failure.map(|f| format!(": {f}")).unwrap_or_default()
    ))
}

/// The configured catalog of the selected streams; an unknown name is an error listing the others.
fn select(
    catalog: Catalog,
    choices: &Option<Vec<StreamChoice>>,
    source_dialect: Dialect,
) -> Result<ConfiguredCatalog> {
    let configure = |stream: sync_protocol::Stream, choice: Option<&StreamChoice>| {
        let mut configured = ConfiguredStream::new(stream);
        // Airbyte sources only checkpoint when asked for incremental streams.
        if source_dialect == Dialect::Airbyte && configured.stream.newer_than_field.is_some() {
            configured.sync_mode = SyncMode::Incremental;
        }
        if let Some(choice) = choice {
            configured.backfill_limit = choice.backfill_limit;
            configured.fields = choice.fields.clone();
        }
        configured
    };
    let Some(choices) = choices else {
        return Ok(ConfiguredCatalog {
            streams: catalog
                .streams
                .into_iter()
                .map(|s| configure(s, None))
                .collect(),
            extra: Default::default(),
        });
    };
    let mut by_name: std::collections::BTreeMap<String, sync_protocol::Stream> = catalog
        .streams
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    let unknown: Vec<&str> = choices
        .iter()
        .filter(|c| !by_name.contains_key(&c.name))
        .map(|c| c.name.as_str())
        .collect();
    if !unknown.is_empty() {
        let known: Vec<&String> = by_name.keys().collect();
        return Err(usage(anyhow!(
            "unknown stream(s) {}; the source offers: {}",
            unknown.join(", "),
            known
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let mut streams = Vec::new();
    for choice in choices {
        if let Some(stream) = by_name.remove(&choice.name) {
            streams.push(configure(stream, Some(choice)));
        }
    }
    Ok(ConfiguredCatalog {
        streams,
        extra: Default::default(),
    })
}

/// The source's catalog, configured for the selected streams.
async fn selected_catalog(o: &Opened) -> Result<ConfiguredCatalog> {
    select(discover(o).await?, &o.pipeline.streams, o.source.dialect)
}

/// Runs the destination's `setup`; connectors without one (every Airbyte destination) skip it.
async fn setup_destination(o: &Opened, catalog: &ConfiguredCatalog) -> Result<()> {
    if o.destination.dialect == Dialect::Airbyte {
        return Ok(());
    }
    let config = o
        .destination
        .file("destination-config.json", &o.destination_config)?;
    let catalog = o.destination.file("catalog.json", catalog)?;
    match o
        .destination
        .run("setup", &[("config", &config), ("catalog", &catalog)])
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if format!("{e:#}").contains("subcommand") => {
            tracing::debug!("{} has no setup: {e:#}", o.destination.name());
            Ok(())
        }
        Err(e) => Err(e),
    }
}

fn sync_id(pipeline: &Pipeline) -> String {
    let mut hasher = Sha256::new();
    for part in [
        pipeline.source.name.as_str(),
        pipeline
            .source
            .config
            .get("account_id")
            .and_then(Value::as_str)
            .unwrap_or(""),
        pipeline
            .source
            .config
            .get("base_url")
            .and_then(Value::as_str)
            .unwrap_or(""),
        pipeline.destination.name.as_str(),
        pipeline
            .destination
            .config
            .get("schema")
            .and_then(Value::as_str)
            .unwrap_or(""),
    ] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    let digest: String = hasher
        .finalize()
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        "{}-to-{}-{digest}",
        pipeline.source.name, pipeline.destination.name
    )
}

fn state_store(args: &SyncArgs, o: &Opened, sync_id: &str) -> StateStore {
    if let Some(path) = args
        .state_file
        .clone()
        .or_else(|| o.pipeline.state_file.clone())
    {
        return StateStore::File(path);
    }
    let url = o.destination_config.get("url").and_then(Value::as_str);
    match url.filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://")) {
        Some(url) => StateStore::postgres(
            url.to_owned(),
            o.destination_config
                .get("ssl_ca_pem")
                .and_then(Value::as_str)
                .map(str::to_owned),
            o.destination_config
                .get("schema")
                .and_then(Value::as_str)
                .unwrap_or("stripe")
                .to_owned(),
            sync_id.to_owned(),
        ),
        None => StateStore::File(
            std::path::PathBuf::from(".sync-state").join(format!("{sync_id}.json")),
        ),
    }
}

async fn sync(args: SyncArgs) -> Result<u8> {
    let opened = open(&args.pipeline).await?;
    let catalog = selected_catalog(&opened).await?;
    if catalog.streams.is_empty() {
        bail!("the source offers no streams to sync");
    }
    setup_destination(&opened, &catalog).await?;
    let id = args
        .sync_id
        .clone()
        .or_else(|| opened.pipeline.sync_id.clone())
        .unwrap_or_else(|| sync_id(&opened.pipeline));
    let store = Arc::new(state_store(&args, &opened, &id));
    if args.reset {
        store.reset().await?;
        tracing::info!("state reset ({})", store.describe());
    }
    let initial = store.load().await?.unwrap_or_default();
    let resumed = initial != SyncState::default();
    tracing::info!(
        "syncing {} stream(s) from {} to {}, {} ({})",
        catalog.streams.len(),
        opened.source.name(),
        opened.destination.name(),
        if resumed {
            "continuing from the saved state"
        } else {
            "from scratch"
        },
        store.describe()
    );
    let time_limit = args
        .time_limit
        .or(opened.pipeline.time_limit)
        .map(Duration::from_secs_f64);
    let spec = pipe::RunSpec {
        source: &opened.source,
        destination: &opened.destination,
        source_config: opened.source_config.clone(),
        destination_config: opened.destination_config.clone(),
        catalog,
        initial,
        store: store.clone(),
        time_limit,
        state_limit: args.state_limit.or(opened.pipeline.state_limit),
        connector_timeout: Duration::from_secs_f64(args.connector_timeout.max(1.0)),
    };
    let mut reporter = report::Reporter::new(args.output);
    let (eof, tracker) = pipe::run(spec, &mut reporter).await?;
    reporter.finish(&eof);
    let failures: Vec<String> = tracker
        .failures()
        .iter()
        .map(|f| sync_connector::redact::redact(f).into_owned())
        .collect();
    eprint!("{}", report::summary(&eof, &failures, &store.describe()));
    Ok(if eof.status == RunStatus::Failed {
        exit::FAILED
    } else if eof.has_more {
        exit::STOPPED
    } else {
        exit::OK
    })
}

async fn check(args: PipelineArgs) -> Result<u8> {
    let opened = open(&args).await?;
    let mut ok = true;
    for (connector, config) in [
        (&opened.source, &opened.source_config),
        (&opened.destination, &opened.destination_config),
    ] {
        let path = connector.file("check-config.json", config)?;
        let status = connector
            .run("check", &[("config", &path)])
            .await?
            .into_iter()
            .find_map(|m| match m {
                Message::ConnectionStatus(s) => Some(s),
                _ => None,
            });
        match status {
            Some(s) if s.status == Status::Succeeded => println!("{}: ok", connector.name()),
            Some(s) => {
                ok = false;
                println!(
                    "{}: FAILED: {}",
                    connector.name(),
                    sync_connector::redact::redact(&s.message.unwrap_or_default())
                );
            }
            None => {
                ok = false;
                println!("{}: FAILED: no connection_status", connector.name());
            }
        }
    }
    Ok(if ok { exit::OK } else { exit::FAILED })
}

async fn discover_command(args: PipelineArgs) -> Result<u8> {
    let opened = open(&args).await?;
    let catalog = selected_catalog(&opened).await?;
    let streams: Vec<sync_protocol::Stream> =
        catalog.streams.into_iter().map(|s| s.stream).collect();
    println!(
        "{}",
        Message::Catalog(Catalog {
            streams,
            ..Default::default()
        })
        .to_line()
    );
    Ok(exit::OK)
}

async fn setup_command(args: PipelineArgs) -> Result<u8> {
    let opened = open(&args).await?;
    let catalog = selected_catalog(&opened).await?;
    setup_destination(&opened, &catalog).await?;
    println!(
        "{} is set up for {} stream(s)",
        opened.destination.name(),
        catalog.streams.len()
    );
    Ok(exit::OK)
}

async fn teardown_command(args: PipelineArgs) -> Result<u8> {
    let opened = open(&args).await?;
    let config = opened
        .destination
        .file("destination-config.json", &opened.destination_config)?;
    opened
        .destination
        .run("teardown", &[("config", &config)])
        .await?;
    println!("{} torn down", opened.destination.name());
    Ok(exit::OK)
}

fn connectors(args: ResolverArgs) -> Result<u8> {
    let resolver = Resolver::new(&args).map_err(usage)?;
    let mut listed = 0;
    for (role, name) in resolver.candidates() {
        if let Ok(resolved) = resolver.resolve(role, &name) {
            println!(
                "{:<12} {:<24} {:<26} {}",
                role.as_str(),
                name,
                resolved.origin.to_string(),
                resolved.command_line()
            );
            listed += 1;
        }
    }
    if listed == 0 {
        println!("no connectors found");
    }
    Ok(exit::OK)
}
