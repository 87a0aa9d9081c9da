//! The engine's subcommands: sync, check, discover, setup, teardown, connectors.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use sync_protocol::{Catalog, Message, RunStatus, Status, SyncState};

use crate::cli::{Command, PipelineArgs, ResolverArgs, SyncArgs};
use crate::pipeline::{open, selected_catalog, setup_destination};
use crate::resolve::Resolver;
use crate::{exit, report, supervisor, usage};

pub async fn dispatch(command: Command) -> Result<u8> {
    match command {
        Command::Sync(args) => sync(args).await,
        Command::Check(args) => check(args).await,
        Command::Discover(args) => discover_command(args).await,
        Command::Setup(args) => setup_command(args).await,
        Command::Teardown(args) => teardown_command(args).await,
        Command::Connectors(args) => connectors(args),
    }
}

/// A setting from a flag or the config file; both, differently, is an error naming both.
fn flag_or_file<T: PartialEq>(
    flag: &str,
    from_flag: Option<T>,
    from_file: Option<T>,
) -> Result<Option<T>> {
    crate::settings::one_of(flag.trim_start_matches("--"), from_flag, from_file).map_err(usage)
}

async fn sync(args: SyncArgs) -> Result<u8> {
    let mut opened = open(&args.pipeline).await?;
    let connector_timeout = Duration::from_secs_f64(args.connector_timeout.max(1.0));
    opened.source.timeout = connector_timeout;
    opened.destination.timeout = connector_timeout;
    let catalog = selected_catalog(&opened).await?;
    if catalog.streams.is_empty() {
        bail!("the source offers no streams to sync");
    }
    setup_destination(&opened, &catalog).await?;
    let sync_id = flag_or_file(
        "--sync-id",
        args.sync_id.clone(),
        opened.pipeline.sync_id.clone(),
    )?;
    let state_file = flag_or_file(
        "--state-file",
        args.state_file.clone(),
        opened.pipeline.state_file.clone(),
    )?;
    let owner = opened.owner(sync_id);
    let store = Arc::new(opened.state_store(state_file, owner));
    store.lock().await?;
    if args.reset {
        store.reset().await?;
        tracing::info!("state reset ({})", store.describe());
    }
    let loaded = store.load().await?;
    opened.apply_control(&loaded.control)?;
    let initial = loaded.state.unwrap_or_default();
    let resumed = initial != SyncState::default();
    let from = if resumed {
        "continuing from the saved state"
    } else {
        "from scratch"
    };
    tracing::info!(
        "syncing {} stream(s) from {} to {}, {from} ({})",
        catalog.streams.len(),
        opened.source.name(),
        opened.destination.name(),
        store.describe()
    );
    let time_limit = flag_or_file("--time-limit", args.time_limit, opened.pipeline.time_limit)?
        .map(Duration::from_secs_f64);
    let state_limit = flag_or_file(
        "--state-limit",
        args.state_limit,
        opened.pipeline.state_limit,
    )?;
    let spec = supervisor::RunSpec {
        source: &opened.source,
        destination: &opened.destination,
        source_config: opened.source_config.clone(),
        destination_config: opened.destination_config.clone(),
        catalog,
        initial,
        store: store.clone(),
        time_limit,
        state_limit,
        connector_timeout,
    };
    let mut reporter = report::Reporter::new(args.output);
    let (eof, tracker) = supervisor::run(spec, &mut reporter).await?;
    reporter.finish(&eof);
    let failures: Vec<String> = tracker
        .failures()
        .iter()
        .map(|f| sync_connector::redact::redact(f).into_owned())
        .collect();
    eprint!(
        "{}",
        report::summary(&eof, &failures, &what_was_saved(&store, resumed))
    );
    Ok(match (eof.status, eof.reason) {
        (RunStatus::Succeeded, _) => exit::OK,
        (_, Some(sync_protocol::EofReason::Error)) => exit::FAILED,
        _ => exit::STOPPED,
    })
}

/// The summary's last line: where the state went, or why none was saved.
fn what_was_saved(store: &crate::store::StateStore, resumed: bool) -> String {
    if store.saved_anything() {
        format!("state saved in {}", store.describe())
    } else if resumed {
        format!(
            "nothing newer was committed; the state in {} is unchanged",
            store.describe()
        )
    } else {
        "nothing was committed, so no state was saved".to_owned()
    }
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

/// Removes this sync's state, then what the destination's setup created.
async fn teardown_command(args: PipelineArgs) -> Result<u8> {
    let opened = open(&args).await?;
    let owner = opened.owner(opened.pipeline.sync_id.clone());
    let store = opened.state_store(None, owner);
    store.lock().await?;
    store.remove().await?;
    let config = opened
        .destination
        .file("destination-config.json", &opened.destination_config)?;
    opened
        .destination
        .run("teardown", &[("config", &config)])
        .await?;
    println!(
        "{} torn down; the sync's state in {} is removed",
        opened.destination.name(),
        store.describe()
    );
    Ok(exit::OK)
}

fn connectors(args: ResolverArgs) -> Result<u8> {
    let resolver = Resolver::new(&args).map_err(usage)?;
    let mut listed = 0;
    for (role, name) in resolver.candidates() {
        if let Some(resolved) = resolver
            .resolve(role, &name)
            .ok()
            .and_then(|found| found.into_iter().next())
        {
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
