//! The engine's subcommands. Each drives an [`Engine`]: in this process, or a `serve` elsewhere
//! (`--engine-url`); the checkpoint is kept here either way.

use std::sync::Arc;

use anyhow::{Result, anyhow, bail};
use sync_protocol::{Eof, Message, Role, RunStatus, Spec, Status, SyncState};
use tokio::sync::watch;

use sync_engine_api::{
    EMITTED_BY, Emitted, Emitter, Engine, EngineError, PipelineRequest, SyncRequest,
};
use sync_engine_client::AnyEngine;
use sync_engine_runtime::args::{PipelineArgs, ResolverArgs};
use sync_engine_runtime::checkpoint;
use sync_engine_runtime::resolve::Resolver;
use sync_engine_runtime::settings::{self, PipelineSettings};
use sync_engine_runtime::store::StateStore;
use sync_engine_runtime::{FailureCode, exit, usage};

use crate::cli::{CheckpointArgs, Command, SetupArgs, SyncArgs, TeardownArgs};
use crate::report;

/// Runs a subcommand; returns the exit code.
pub async fn dispatch(command: Command) -> Result<u8> {
    match command {
        Command::Sync(args) => {
            let engine = AnyEngine::choose(&args.pipeline, true)?;
            sync(&engine, args).await
        }
        Command::Check(args) => check(&AnyEngine::choose(&args, false)?, args).await,
        Command::Discover(args) => discover(&AnyEngine::choose(&args, false)?, args).await,
        Command::Setup(args) => setup(&AnyEngine::choose(&args.pipeline, false)?, args).await,
        Command::Teardown(args) => teardown(&AnyEngine::choose(&args.pipeline, false)?, args).await,
        Command::Connectors(args) => connectors(args),
        Command::Serve(args) => {
            if let Some(url) = &args.sql_reader_url {
                let reader = sync_console::SqlReader::parse(url)
                    .map_err(|e| usage(anyhow!("--sql-reader-url: {e}")))?;
                if let Some(password) = reader.password() {
                    sync_connector::redact::register_secret(&password);
                }
            }
            sync_engine_http::serve(args, Box::new(crate::explorer::pages)).await
        }
    }
}

/// An engine error as the CLI reports it: a usage error (exit 2) or a failure (exit 1).
pub fn engine_error(e: EngineError) -> anyhow::Error {
    match e.exit_code() {
        exit::USAGE => usage(anyhow!(e)),
        _ => anyhow!(e),
    }
}

/// A setting from a flag or the config file; both, differently, is an error naming both.
fn flag_or_file<T: PartialEq>(
    flag: &str,
    from_flag: Option<T>,
    from_file: Option<T>,
) -> Result<Option<T>> {
    settings::one_of(flag.trim_start_matches("--"), from_flag, from_file).map_err(usage)
}

fn pipeline(args: &PipelineArgs) -> Result<(PipelineSettings, PipelineRequest)> {
    let pipeline = settings::pipeline(args).map_err(usage)?;
    let request = PipelineRequest::from(&pipeline);
    Ok((pipeline, request))
}

/// Saves the newest committed checkpoint in the background; a burst of states is one save.
struct Saver {
    tx: watch::Sender<Option<SyncState>>,
    task: tokio::task::JoinHandle<Option<String>>,
}

impl Saver {
    fn start(store: Arc<StateStore>) -> Saver {
        let (tx, mut rx) = watch::channel::<Option<SyncState>>(None);
        let task = tokio::spawn(async move {
            loop {
                let closed = rx.changed().await.is_err();
                let snapshot = rx.borrow_and_update().clone();
                if let Some(state) = snapshot
                    && let Err(e) = store.save(&state).await
                {
                    return Some(format!("saving the state failed: {e:#}"));
                }
                if closed {
                    return None;
                }
            }
        });
        Saver { tx, task }
    }

    /// Waits for the last save; returns its failure, if any.
    async fn finish(self) -> Option<String> {
        drop(self.tx);
        self.task.await.unwrap_or_else(|e| Some(e.to_string()))
    }
}

/// Both connectors' specs, once each config has been checked against its connector's.
async fn checked_specs(engine: &AnyEngine, request: &PipelineRequest) -> Result<(Spec, Spec)> {
    let (source_spec, destination_spec) = tokio::try_join!(
        engine.spec(Role::Source, &request.source.name),
        engine.spec(Role::Destination, &request.destination.name),
    )
    .map_err(engine_error)?;
    checkpoint::validate(
        Role::Source,
        &request.source.name,
        &source_spec,
        &request.source_config(),
    )?;
    checkpoint::validate(
        Role::Destination,
        &request.destination.name,
        &destination_spec,
        &request.destination_config(),
    )?;
    Ok((source_spec, destination_spec))
}

/// Why `--websocket` is refused, and what does its job here.
const WEBSOCKET_REFUSED: &str = "--websocket (live events over the Stripe CLI's websocket) is not supported: use --live, which polls Stripe's /v1/events every 2 s, and for webhooks as well give the source webhook_listen and webhook_url (--source-config '{\"webhook_listen\": \"0.0.0.0:8088\", \"webhook_url\": \"https://…/webhooks\"}'); see docs/live.md";

/// `--no-state` keeps no checkpoint: a pipeline file naming one contradicts it.
fn no_state_refusals(pipeline: &PipelineSettings) -> Result<()> {
    for (given, key) in [
        (pipeline.state_file.is_some(), "state_file"),
        (pipeline.sync_id.is_some(), "sync_id"),
    ] {
        if given {
            bail!(usage(anyhow!(
                "--no-state and --config's {key} contradict each other: with --no-state no checkpoint is read or saved; give one of them"
            )));
        }
    }
    Ok(())
}

async fn sync(engine: &AnyEngine, args: SyncArgs) -> Result<u8> {
    if args.websocket {
        bail!(usage(anyhow!(WEBSOCKET_REFUSED)));
    }
    let (pipeline, mut request) = pipeline(&args.pipeline)?;
    if args.no_state {
        no_state_refusals(&pipeline)?;
    }
    // Every setting is checked before the checkpoint is touched: a refused run resets nothing.
    let time_limit = flag_or_file("--time-limit", args.time_limit, pipeline.time_limit)?;
    let state_limit = flag_or_file("--state-limit", args.state_limit, pipeline.state_limit)?;
    if args.live {
        sync_engine_runtime::live_config(&mut request).map_err(usage)?;
    }
    let (source_spec, destination_spec) = checked_specs(engine, &request).await?;
    let store = Arc::new(checkpoint_store(
        &pipeline,
        &args.checkpoint,
        [&source_spec, &destination_spec],
        args.no_state,
    )?);
    request.sync_id = Some(store.sync_id().to_owned());
    store.lock().await?;
    if args.reset {
        store.reset().await?;
        tracing::info!("state reset ({})", store.describe());
    }
    let loaded = store.load().await?;
    let basis = checkpoint::apply_control(
        &mut request,
        &pipeline,
        &loaded.control,
        [&source_spec, &destination_spec],
    )?;
    let initial = loaded.state.unwrap_or_default();
    let resumed = initial != SyncState::default();
    let from = if resumed {
        "continuing from the saved state"
    } else {
        "from scratch"
    };
    tracing::info!(
        "syncing from {} to {} through {}, {from} ({})",
        request.source.name,
        request.destination.name,
        engine.describe(),
        store.describe()
    );
    let messages = engine
        .sync(
            &request,
            SyncRequest {
                state: initial.clone(),
                soft_time_limit: time_limit,
                state_limit,
                ..Default::default()
            },
        )
        .await
        .map_err(engine_error)?;
    let mut reporter = report::Reporter::new(args.output_mode());
    let outcome = follow(engine, messages, &store, initial, &mut reporter, &basis).await;
    reporter.finish(&outcome.eof_line);
    let failures: Vec<String> = outcome
        .failures
        .iter()
        .map(|f| sync_connector::redact::redact(f).into_owned())
        .collect();
    eprint!(
        "{}",
        report::summary(&outcome.eof, &failures, &what_was_saved(&store, resumed))
    );
    Ok(outcome.exit_code())
}

/// What a sync's messages came to.
struct Outcome {
    eof: Eof,
    /// The eof as the engine stamped it, for the output.
    eof_line: Emitted,
    failures: Vec<String>,
    save_failed: bool,
}

impl Outcome {
    fn exit_code(&self) -> u8 {
        match (self.eof.status, self.eof.reason, self.save_failed) {
            (_, _, true) => exit::FAILED,
            (RunStatus::Succeeded, _, _) => exit::OK,
            (_, Some(sync_protocol::EofReason::Error), _) => exit::FAILED,
            _ => exit::STOPPED,
        }
    }
}

/// Follows a sync's messages: saves every committed checkpoint and config update, shows
/// progress, collects failures, until the `eof`.
async fn follow(
    engine: &AnyEngine,
    mut messages: sync_engine_api::Messages,
    store: &Arc<StateStore>,
    mut state: SyncState,
    reporter: &mut report::Reporter,
    basis: &checkpoint::UpdateBasis,
) -> Outcome {
    let saver = Saver::start(store.clone());
    let mut failures = Vec::new();
    let mut eof = None;
    while let Some(emitted) = messages.next_emitted().await {
        if let Message::Eof(_) = &emitted.message {
            eof = Some(emitted);
            continue;
        }
        reporter.message(&emitted);
        match emitted.message {
            Message::SourceState(committed) => {
                state.apply(&committed);
                saver.tx.send_replace(Some(state.clone()));
            }
            Message::Control(sync_protocol::Control::DestinationTables(tables)) => {
                // As the engine did to its copy: streams whose tables changed start over. Their
                // saved states go now; the tables seen are saved with the next commit.
                let resets = state.reconcile_tables(&tables);
                if !resets.is_empty() {
                    saver.tx.send_replace(Some(state.clone()));
                }
            }
            Message::Control(control) => {
                let (side, config) = match control {
                    sync_protocol::Control::SourceConfig(c) => (Role::Source, c),
                    sync_protocol::Control::DestinationConfig(c) => (Role::Destination, c),
                    sync_protocol::Control::DestinationTables(_) => continue,
                };
                if let serde_json::Value::Object(map) = config {
                    sync_connector::redact::register_config_secrets(
                        &serde_json::Value::Null,
                        &serde_json::Value::Object(map.clone()),
                    );
                    if let Err(e) = store.save_control(side, basis.to_keep(side, map)).await {
                        failures.push(format!("saving a connector's config update failed: {e:#}"));
                    }
                }
            }
            Message::ConnectionStatus(status) if status.status == Status::Failed => {
                failures.extend(
                    status
                        .message
                        .unwrap_or_default()
                        .lines()
                        .map(str::to_owned),
                );
            }
            Message::Log(log) if engine.is_remote() => {
                sync_engine_runtime::relay_log("engine", &log)
            }
            _ => {}
        }
    }
    let mut save_failed = false;
    if let Some(failure) = saver.finish().await {
        failures.push(failure);
        save_failed = true;
    }
    let eof_line = eof.unwrap_or_else(|| {
        let why = format!(
            "{} ended the sync without an eof; what was committed before is saved",
            engine.describe()
        );
        failures.push(why.clone());
        let eof = Eof {
            status: RunStatus::Failed,
            reason: Some(sync_protocol::EofReason::Error),
            has_more: true,
            ending_state: Some(state.clone()),
            run_progress: None,
            request_progress: None,
            error: Some(FailureCode::Internal.error(why)),
            extra: Default::default(),
        };
        Emitted::new(&Emitter::engine(), Message::Eof(Box::new(eof)))
    });
    let eof = match &eof_line.message {
        Message::Eof(eof) => (**eof).clone(),
        _ => unreachable!("only an eof is kept as the eof line"),
    };
    Outcome {
        eof,
        eof_line,
        failures,
        save_failed,
    }
}

/// The summary's last line: where the state went, or why none was saved.
fn what_was_saved(store: &StateStore, resumed: bool) -> String {
    if store.keeps_nothing() {
        "--no-state: no state was read or saved".to_owned()
    } else if store.saved_anything() {
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

async fn check(engine: &AnyEngine, args: PipelineArgs) -> Result<u8> {
    let (_, request) = pipeline(&args)?;
    let mut messages = engine.check(&request, None).await.map_err(engine_error)?;
    let mut seen = 0;
    let mut ok = true;
    while let Some(message) = messages.next().await {
        let Message::ConnectionStatus(status) = message else {
            continue;
        };
        seen += 1;
        let who = status
            .extra
            .get(EMITTED_BY)
            .and_then(|v| v.as_str())
            .unwrap_or("connector")
            .to_owned();
        if status.status == Status::Succeeded {
            println!("{who}: ok");
        } else {
            ok = false;
            println!(
                "{who}: FAILED: {}",
                sync_connector::redact::redact(&status.message.unwrap_or_default())
            );
        }
    }
    if seen < 2 {
        bail!(
            "{} answered {seen} connection status(es), expected 2",
            engine.describe()
        );
    }
    Ok(if ok { exit::OK } else { exit::FAILED })
}

async fn discover(engine: &AnyEngine, args: PipelineArgs) -> Result<u8> {
    let (_, request) = pipeline(&args)?;
    let mut messages = engine.discover(&request).await.map_err(engine_error)?;
    while let Some(message) = messages.next().await {
        if let Message::Catalog(_) = message {
            println!("{}", message.to_line());
            return Ok(exit::OK);
        }
    }
    bail!("{} answered no catalog", engine.describe())
}

async fn setup(engine: &AnyEngine, args: SetupArgs) -> Result<u8> {
    let (pipeline, mut request) = pipeline(&args.pipeline)?;
    let (source_spec, destination_spec) = checked_specs(engine, &request).await?;
    let sync_id = flag_or_file("--sync-id", args.sync_id, pipeline.sync_id.clone())?;
    let owner = checkpoint::owner(&pipeline, &source_spec, &destination_spec, sync_id);
    request.sync_id = Some(owner.sync_id);
    let basis = checkpoint::UpdateBasis::of(&request, [&source_spec, &destination_spec]);
    let mut messages = engine.setup(&request, None).await.map_err(engine_error)?;
    while let Some(message) = messages.next().await {
        let (side, update) = match message {
            Message::Control(sync_protocol::Control::SourceConfig(serde_json::Value::Object(
                u,
            ))) => (Role::Source, u),
            Message::Control(sync_protocol::Control::DestinationConfig(
                serde_json::Value::Object(u),
            )) => (Role::Destination, u),
            _ => continue,
        };
        // A complete config whose only news is what setup finds again needs no saving.
        if !basis.to_keep(side, update).is_empty() {
            tracing::warn!(
                "setup returned a config update (stripe: a new webhook endpoint's secret); only sync saves such updates, so sync will replace what this setup made"
            );
        }
    }
    println!("{} is set up", request.destination.name);
    Ok(exit::OK)
}

/// The checkpoint store of the sync the flags and the pipeline file name.
fn checkpoint_store(
    pipeline: &PipelineSettings,
    flags: &CheckpointArgs,
    [source_spec, destination_spec]: [&Spec; 2],
    no_state: bool,
) -> Result<StateStore> {
    let sync_id = flag_or_file("--sync-id", flags.sync_id.clone(), pipeline.sync_id.clone())?;
    let state_file = flag_or_file(
        "--state-file",
        flags.state_file.clone(),
        pipeline.state_file.clone(),
    )?;
    let owner = checkpoint::owner(pipeline, source_spec, destination_spec, sync_id);
    if no_state {
        return Ok(StateStore::nowhere(owner));
    }
    Ok(checkpoint::state_store(pipeline, state_file, owner))
}

/// Removes this sync's state, then what the connectors' setup created.
async fn teardown(engine: &AnyEngine, args: TeardownArgs) -> Result<u8> {
    let (pipeline, mut request) = pipeline(&args.pipeline)?;
    let (source_spec, destination_spec) = tokio::try_join!(
        engine.spec(Role::Source, &request.source.name),
        engine.spec(Role::Destination, &request.destination.name),
    )
    .map_err(engine_error)?;
    let store = checkpoint_store(
        &pipeline,
        &args.checkpoint,
        [&source_spec, &destination_spec],
        false,
    )?;
    request.sync_id = Some(store.sync_id().to_owned());
    store.lock().await?;
    let others = store.remove().await?;
    if !others.is_empty() {
        tracing::warn!(
            "{} still holds the state of other syncs ({}): resumed, they would skip what is torn down now; give their --sync-id to teardown too, or run them with --reset",
            store.describe(),
            others.join(", ")
        );
    }
    // Both sides: the source removes what its setup made (stripe: its webhook endpoint).
    let mut messages = engine
        .teardown(&request, None)
        .await
        .map_err(engine_error)?;
    while let Some(message) = messages.next().await {
        // What the connectors kept (dest-postgres: tables other syncs still use) is news.
        if let Message::Log(log) = message
            && log.level >= sync_protocol::LogLevel::Warn
        {
            eprintln!("{}", sync_connector::redact::redact(&log.message));
        }
    }
    println!(
        "{} and {} torn down; the sync's state in {} is removed",
        request.source.name,
        request.destination.name,
        store.describe()
    );
    Ok(exit::OK)
}

fn connectors(args: ResolverArgs) -> Result<u8> {
    let resolver = Resolver::new(&args).map_err(usage)?;
    let listed = sync_engine_runtime::local::list_connectors(&resolver)?;
    for (role, name, origin, command) in &listed {
        println!("{:<12} {name:<24} {origin:<26} {command}", role.as_str());
    }
    if listed.is_empty() {
        println!("no connectors found");
    }
    Ok(exit::OK)
}
