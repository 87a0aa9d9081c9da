//! The engine in this process: connectors run as child processes of it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::Value;
use sync_protocol::{
    Catalog, ConfiguredCatalog, ConnectionStatus, Control, Eof, EofReason, FailureType, Log,
    LogLevel, Message, Role, RunStatus, Spec, Status,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tracing::Instrument;

use crate::connector::Connector;
use crate::pipeline::{self, Opened, open, open_connector, run_lifecycle, selected_catalog};
use crate::resolve::Resolver;
use crate::supervisor::{self, RunSpec, Signals};
use crate::tracker::FailureCode;
use sync_engine_api::{
    EMITTED_BY, Emitted, Emitter, Engine, EngineError, EngineResult, Messages, Outbox,
    PipelineRequest, SyncRequest, emitted_by,
};

/// Share of a hard time limit after which the source is stopped gracefully, when no soft limit
/// is given.
const SOFT_SHARE: f64 = 0.8;

/// The in-process engine.
pub struct LocalEngine {
    resolver: Resolver,
    connector_timeout: Duration,
    /// Runs handle the engine's SIGINT and SIGTERM (the CLI); a server handles its own.
    handle_signals: bool,
    /// Caps concurrent syncs (a server), with the cap; `None`: no cap.
    runs: Option<(Arc<Semaphore>, usize)>,
    specs: Mutex<HashMap<(Role, String), Spec>>,
}

impl LocalEngine {
    /// An engine resolving connectors with `resolver`.
    pub fn new(resolver: Resolver, connector_timeout: Duration) -> LocalEngine {
        LocalEngine {
            resolver,
            connector_timeout,
            handle_signals: false,
            runs: None,
            specs: Mutex::new(HashMap::new()),
        }
    }

    /// An engine resolving connectors as the CLI's resolver flags say.
    pub fn from_args(
        args: &crate::args::ResolverArgs,
        connector_timeout: Duration,
    ) -> anyhow::Result<LocalEngine> {
        Ok(LocalEngine::new(Resolver::new(args)?, connector_timeout))
    }

    /// Its syncs stop gracefully on the first SIGINT or SIGTERM and kill on the second.
    pub fn handling_signals(mut self) -> LocalEngine {
        self.handle_signals = true;
        self
    }

    /// At most `n` syncs at once; more are refused with [`EngineError::Busy`].
    pub fn with_max_runs(mut self, n: usize) -> LocalEngine {
        let cap = n.max(1);
        self.runs = Some((Arc::new(Semaphore::new(cap)), cap));
        self
    }

    /// The resolver, for listing connectors.
    pub fn resolver(&self) -> &Resolver {
        &self.resolver
    }

    /// How long a connector may stay silent before it is stopped as hung.
    pub fn connector_timeout(&self) -> Duration {
        self.connector_timeout
    }

    fn permit(&self) -> EngineResult<Option<OwnedSemaphorePermit>> {
        match &self.runs {
            None => Ok(None),
            Some((runs, cap)) => runs.clone().try_acquire_owned().map(Some).map_err(|_| {
                EngineError::Busy(format!(
                    "the engine runs at most {cap} syncs at once (--max-concurrent-runs) and all are running; retry later"
                ))
            }),
        }
    }

    async fn open_side(
        &self,
        role: Role,
        pipeline: &PipelineRequest,
    ) -> EngineResult<(Connector, Value)> {
        let side = match role {
            Role::Source => &pipeline.source,
            Role::Destination => &pipeline.destination,
        };
        open_connector(
            &self.resolver,
            role,
            side,
            self.connector_timeout,
            pipeline.sync_id.as_deref(),
        )
        .await
    }
}

/// A `connection_status` tagged with the connector that emitted it, in its payload (as this
/// engine always did) and on its envelope.
fn tagged_status(mut status: ConnectionStatus, role: Role, name: &str) -> Emitted {
    status
        .extra
        .insert(EMITTED_BY.to_owned(), Value::String(emitted_by(role, name)));
    Emitted::new(
        &Emitter::connector(role, name),
        Message::ConnectionStatus(status),
    )
}

/// The name the pipeline gives the connector of `role`.
fn name_of(p: &PipelineRequest, role: Role) -> &str {
    match role {
        Role::Source => &p.source.name,
        Role::Destination => &p.destination.name,
    }
}

/// Runs `check` on one connector and reports its status (a failure to run is a failed status).
async fn check_one(connector: &Connector, config: &Value, role: Role, name: &str) -> Emitted {
    let result = async {
        let path = connector.file("check-config.json", config)?;
        let messages = connector.run("check", &[("config", &path)]).await?;
        Ok::<_, anyhow::Error>(messages.into_iter().find_map(|m| match m {
            Message::ConnectionStatus(s) => Some(s),
            _ => None,
        }))
    }
    .await;
    let status = match result {
        Ok(Some(status)) => status,
        Ok(None) => ConnectionStatus::failed("printed no connection_status", None),
        Err(e) => ConnectionStatus::failed(
            sync_connector::redact::redact(&format!("{e:#}")).into_owned(),
            Some(FailureType::SystemError),
        ),
    };
    tagged_status(status, role, name)
}

/// The messages of `setup` and `teardown` worth passing on: config updates and logs.
fn lifecycle_output(messages: Vec<Message>, by: Emitter) -> impl Iterator<Item = Emitted> {
    messages
        .into_iter()
        .filter(|m| matches!(m, Message::Control(_) | Message::Log(_)))
        .map(move |m| Emitted::new(&by, m))
}

fn sides(only: Option<Role>) -> Vec<Role> {
    match only {
        Some(role) => vec![role],
        None => vec![Role::Source, Role::Destination],
    }
}

impl Engine for LocalEngine {
    async fn spec(&self, role: Role, name: &str) -> EngineResult<Spec> {
        let key = (role, name.to_owned());
        if let Some(spec) = self
            .specs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(spec.clone());
        }
        let candidates = self
            .resolver
            .resolve(role, name)
            .map_err(|e| EngineError::NotFound(format!("{e:#}")))?;
        let connector = Connector::open(role, candidates)
            .await
            .map_err(|e| EngineError::Connector(format!("{e:#}")))?;
        let spec = connector.spec.clone();
        self.specs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, spec.clone());
        Ok(spec)
    }

    async fn check(&self, p: &PipelineRequest, only: Option<Role>) -> EngineResult<Messages> {
        let mut opened = Vec::new();
        for role in sides(only) {
            opened.push((role, self.open_side(role, p).await?));
        }
        let mut out = Vec::new();
        for (role, (connector, config)) in &opened {
            out.push(check_one(connector, config, *role, name_of(p, *role)).await);
        }
        Ok(Messages::of(out))
    }

    async fn discover(&self, p: &PipelineRequest) -> EngineResult<Messages> {
        let (source, config) = self.open_side(Role::Source, p).await?;
        let catalog = pipeline::discover(&source, &config)
            .await
            .map_err(|e| EngineError::Connector(format!("{e:#}")))?;
        let selected = pipeline::select(catalog, &p.streams, source.dialect)
            .map_err(|e| EngineError::Invalid(format!("{e:#}")))?;
        let catalog = Message::Catalog(Catalog {
            streams: selected.streams.into_iter().map(|s| s.stream).collect(),
            ..Default::default()
        });
        Ok(Messages::of(vec![Emitted::new(
            &Emitter::connector(Role::Source, &p.source.name),
            catalog,
        )]))
    }

    async fn setup(&self, p: &PipelineRequest, only: Option<Role>) -> EngineResult<Messages> {
        let opened = open(&self.resolver, p, self.connector_timeout).await?;
        let catalog = selected_catalog(&opened, None).await?;
        let mut out = Vec::new();
        for role in sides(only) {
            let (connector, config) = match role {
                Role::Source => (&opened.source, &opened.source_config),
                Role::Destination => (&opened.destination, &opened.destination_config),
            };
            let messages = run_lifecycle(connector, "setup", config, Some(&catalog))
                .await
                .map_err(|e| EngineError::Connector(format!("{e:#}")))?;
            out.extend(lifecycle_output(
                messages,
                Emitter::connector(role, name_of(p, role)),
            ));
        }
        Ok(Messages::of(out))
    }

    async fn teardown(&self, p: &PipelineRequest, only: Option<Role>) -> EngineResult<Messages> {
        let mut out = Vec::new();
        for role in sides(only) {
            let (connector, config) = self.open_side(role, p).await?;
            let messages = run_lifecycle(&connector, "teardown", &config, None)
                .await
                .map_err(|e| EngineError::Connector(format!("{e:#}")))?;
            out.extend(lifecycle_output(
                messages,
                Emitter::connector(role, name_of(p, role)),
            ));
        }
        Ok(Messages::of(out))
    }

    async fn sync(&self, p: &PipelineRequest, request: SyncRequest) -> EngineResult<Messages> {
        let started = Instant::now();
        let (soft_deadline, hard_deadline) = deadlines(started, &request)?;
        let permit = self.permit()?;
        let opened = open(&self.resolver, p, self.connector_timeout).await?;
        if !request.input.is_empty() && opened.source.spec.source_input.is_none() {
            return Err(EngineError::Invalid(format!(
                "stdin: {} accepts no source_input (its spec has no source_input schema)",
                opened.source.name()
            )));
        }
        let catalog = selected_catalog(&opened, request.prepared.as_ref()).await?;
        if catalog.streams.is_empty() {
            return Err(EngineError::Invalid(
                "the source offers no streams to sync".to_owned(),
            ));
        }
        let mut request = request;
        let refreshed = begin_run(&mut request, &catalog, &p.streams);
        let mut opened = opened;
        let (source_setup, setup) =
            setup_both(&opened, &catalog, request.prepared.is_some()).await?;
        let (tx, rx) = Outbox::channel();
        let source_by = Emitter::connector(Role::Source, &p.source.name);
        let destination_by = Emitter::connector(Role::Destination, &p.destination.name);
        for stream in refreshed {
            let note = format!(
                "{stream}: sync_mode full_refresh, read from scratch (its saved state is not used)"
            );
            tracing::info!("{note}");
            tx.send(
                &Emitter::engine(),
                Message::Log(Log::new(LogLevel::Info, note)),
            );
        }
        let setup_output = lifecycle_output(source_setup, source_by.clone())
            .chain(lifecycle_output(setup, destination_by.clone()));
        for emitted in setup_output {
            take_setup_output(emitted, &mut request, &mut opened, &tx);
        }
        let (cancel_tx, cancel_rx) = oneshot::channel();
        let signals = if self.handle_signals {
            Some(Signals::install().map_err(EngineError::Internal)?)
        } else {
            None
        };
        let run = Run {
            opened,
            source_by,
            destination_by,
            catalog,
            request,
            soft_deadline,
            hard_deadline,
            connector_timeout: self.connector_timeout,
        };
        let span = run_span(run.request.run_id.as_deref());
        tokio::spawn(
            async move {
                let _permit = permit;
                run.execute(tx, cancel_rx, signals).await;
            }
            .instrument(span),
        );
        Ok(Messages::new(rx, Some(cancel_tx)))
    }
}

/// Both connectors' `setup` for the run's streams, at once (neither needs what the other
/// makes); none when the caller prepared the run (see `SyncRequest::prepared`).
async fn setup_both(
    opened: &Opened,
    catalog: &ConfiguredCatalog,
    prepared: bool,
) -> EngineResult<(Vec<Message>, Vec<Message>)> {
    if prepared {
        return Ok((Vec::new(), Vec::new()));
    }
    let source = run_lifecycle(
        &opened.source,
        "setup",
        &opened.source_config,
        Some(catalog),
    );
    let destination = pipeline::setup_destination(opened, catalog);
    tokio::try_join!(source, destination).map_err(|e| EngineError::Connector(format!("{e:#}")))
}

/// Passes one message of a setup on: the destination's table report reconciles the state (a
/// table recreated or emptied means its stream is read again), a connector's config update
/// applies to this very run (a webhook secret setup just made).
fn take_setup_output(
    emitted: Emitted,
    request: &mut SyncRequest,
    opened: &mut Opened,
    tx: &Outbox,
) {
    match &emitted.message {
        Message::Control(Control::DestinationTables(tables)) => {
            // The caller applies the same report to its copy of the state.
            let resets = request.state.reconcile_tables(tables);
            tx.forward(emitted);
            for reset in resets {
                tracing::warn!("{reset}");
                tx.send(
                    &Emitter::engine(),
                    Message::Log(Log::new(LogLevel::Warn, reset.to_string())),
                );
            }
            return;
        }
        Message::Control(control) => pipeline::apply_update(opened, control),
        _ => {}
    }
    tx.forward(emitted);
}

/// The span a run's logs carry: the run's name (`run_id`), inside the caller's span (the HTTP
/// request's action id).
pub(crate) fn run_span(run_id: Option<&str>) -> tracing::Span {
    match run_id {
        Some(run_id) => tracing::info_span!("run", run_id = %run_id),
        None => tracing::info_span!("run"),
    }
}

/// Prepares a run's state: the saved state of every stream chosen with
/// `sync_mode: full_refresh` dropped, so that it is read from scratch, and the run's name in
/// `sync_run.run_id`. A request that continues the run its state was saved by (the same
/// `run_id`, as a caller stepping through one run in time-limited requests sends) continues
/// that run's refresh instead of starting it over, so such steps end. Returns the streams read
/// from scratch.
pub(crate) fn begin_run(
    request: &mut SyncRequest,
    catalog: &ConfiguredCatalog,
    choices: &Option<Vec<sync_engine_api::StreamChoice>>,
) -> Vec<String> {
    let same_run = request.run_id.is_some() && request.state.sync_run.run_id == request.run_id;
    if let Some(run_id) = &request.run_id {
        request.state.sync_run.run_id = Some(run_id.clone());
    }
    if same_run {
        return Vec::new();
    }
    let refreshed = pipeline::full_refresh_streams(catalog, choices);
    for stream in &refreshed {
        request.state.source.streams.remove(stream);
    }
    refreshed
}

/// When the source is stopped gracefully, and when both connectors are killed.
pub(crate) fn deadlines(
    started: Instant,
    request: &SyncRequest,
) -> EngineResult<(Option<Instant>, Option<Instant>)> {
    let seconds = |what: &str, value: Option<f64>| match value {
        Some(s) if !sync_engine_api::is_time_limit(s) => Err(EngineError::Invalid(format!(
            "{what} must be a number of seconds above 0 and at most {}, got {s}",
            sync_engine_api::MAX_TIME_LIMIT_SECS
        ))),
        other => Ok(other.map(Duration::from_secs_f64)),
    };
    let hard = seconds("time_limit", request.time_limit)?;
    let soft = seconds("soft_time_limit", request.soft_time_limit)?;
    let soft = soft.or_else(|| hard.map(|h| h.mul_f64(SOFT_SHARE)));
    Ok((soft.map(|s| started + s), hard.map(|h| started + h)))
}

/// One sync, once its connectors are open and the destination is set up.
struct Run {
    opened: Opened,
    source_by: Emitter,
    destination_by: Emitter,
    catalog: ConfiguredCatalog,
    request: SyncRequest,
    soft_deadline: Option<Instant>,
    hard_deadline: Option<Instant>,
    connector_timeout: Duration,
}

impl Run {
    /// Runs the sync and reports it on `tx`, ending with exactly one `eof`.
    async fn execute(self, tx: Outbox, cancel: oneshot::Receiver<()>, signals: Option<Signals>) {
        let initial = self.request.state.clone();
        let spec = RunSpec {
            source: &self.opened.source,
            destination: &self.opened.destination,
            source_config: self.opened.source_config.clone(),
            destination_config: self.opened.destination_config.clone(),
            catalog: self.catalog.clone(),
            initial: initial.clone(),
            events: tx.clone(),
            source_by: self.source_by.clone(),
            destination_by: self.destination_by.clone(),
            cancel,
            soft_deadline: self.soft_deadline,
            hard_deadline: self.hard_deadline,
            state_limit: self.request.state_limit,
            connector_timeout: self.connector_timeout,
            input: self.request.input.clone(),
        };
        tracing::info!(streams = self.catalog.streams.len(), "sync started");
        let eof = match supervisor::run(spec, signals).await {
            Ok((eof, tracker)) => {
                let failures = tracker.failures();
                if !failures.is_empty() {
                    tx.send(
                        &Emitter::engine(),
                        Message::ConnectionStatus(ConnectionStatus::failed(
                            failures.join("\n"),
                            tracker.failure_type(),
                        )),
                    );
                }
                if let Some(progress) = &eof.run_progress {
                    tx.send(
                        &Emitter::engine(),
                        Message::Progress(Box::new(progress.clone())),
                    );
                }
                eof
            }
            Err(e) => {
                let message = sync_connector::redact::redact(&format!("{e:#}")).into_owned();
                tx.send(
                    &Emitter::engine(),
                    Message::ConnectionStatus(ConnectionStatus::failed(
                        message.clone(),
                        Some(FailureType::SystemError),
                    )),
                );
                failed_eof(initial, message)
            }
        };
        tracing::info!(status = ?eof.status, has_more = eof.has_more, "sync ended");
        tx.send(&Emitter::engine(), Message::Eof(Box::new(eof)));
    }
}

/// The eof of a run that could not start: nothing committed, the state as it was.
fn failed_eof(state: sync_protocol::SyncState, why: String) -> Eof {
    Eof {
        status: RunStatus::Failed,
        reason: Some(EofReason::Error),
        has_more: true,
        ending_state: Some(state),
        run_progress: None,
        request_progress: None,
        error: Some(FailureCode::ConnectorFailed.error(why)),
        extra: Default::default(),
    }
}

/// The status of a connection: whether `check` passed.
pub fn passed(message: &Message) -> Option<bool> {
    match message {
        Message::ConnectionStatus(s) => Some(s.status == Status::Succeeded),
        _ => None,
    }
}

/// Lists the connectors the resolver finds: (role, name, where from, command line).
pub fn list_connectors(resolver: &Resolver) -> Result<Vec<(Role, String, String, String)>> {
    let mut listed = Vec::new();
    for (role, name) in resolver.candidates() {
        if let Some(resolved) = resolver
            .resolve(role, &name)
            .ok()
            .and_then(|found| found.into_iter().next())
        {
            listed.push((
                role,
                name,
                resolved.origin.to_string(),
                resolved.command_line(),
            ));
        }
    }
    Ok(listed)
}
