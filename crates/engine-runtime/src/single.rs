//! One connector alone, for the HTTP routes `pipeline_read` (the source's whole output,
//! records included) and `pipeline_write` (given messages into the destination).

use std::process::Stdio;
use std::time::Instant;

use serde_json::Value;
use sync_protocol::airbyte::{self, AirbyteMessage};
use sync_protocol::framing::DEFAULT_MAX_LINE_BYTES;
use sync_protocol::{
    ConfiguredCatalog, ConnectionStatus, Eof, EofReason, FailureType, Message, Role, RunStatus,
    SyncState,
};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::sync::oneshot;
use tracing::Instrument;

use crate::connector::{Connector, Dialect};
use crate::lines::LineReader;
use crate::local::LocalEngine;
use crate::pipeline;
use crate::tracker::FailureCode;
use sync_engine_api::{
    Emitter, EngineError, EngineResult, Messages, Outbox, PipelineRequest, SyncRequest,
};

fn connector_error(e: anyhow::Error) -> EngineError {
    EngineError::Connector(format!("{e:#}"))
}

/// The source's catalog narrowed to the pipeline's streams.
async fn catalog(
    source: &Connector,
    config: &Value,
    p: &PipelineRequest,
    prepared: Option<&sync_protocol::Catalog>,
) -> EngineResult<ConfiguredCatalog> {
    let catalog = pipeline::source_catalog(source, config, prepared).await?;
    pipeline::select(catalog, &p.streams, source.dialect)
        .map_err(|e| EngineError::Invalid(format!("{e:#}")))
}

fn catalog_file(
    connector: &Connector,
    catalog: &ConfiguredCatalog,
) -> anyhow::Result<std::path::PathBuf> {
    match connector.dialect {
        Dialect::Native => connector.file("catalog.json", catalog),
        Dialect::Airbyte => connector.file(
            "catalog.json",
            &airbyte::configured_catalog_to_airbyte(catalog),
        ),
    }
}

fn parse(line: &[u8], dialect: Dialect, role: Role) -> Vec<Message> {
    match dialect {
        Dialect::Native => Message::from_slice(line).into_iter().collect(),
        Dialect::Airbyte => AirbyteMessage::from_slice(line)
            .map(|m| airbyte::from_airbyte(m, role))
            .unwrap_or_default(),
    }
}

impl LocalEngine {
    /// The source's whole output (records included), then an `eof` whose `ending_state` holds
    /// every state the source emitted. `time_limit` kills it, `soft_time_limit` stops it.
    pub async fn read(&self, p: &PipelineRequest, request: SyncRequest) -> EngineResult<Messages> {
        let (soft_at, hard_at) = crate::local::deadlines(Instant::now(), &request)?;
        let (source, config) = pipeline::open_connector(
            self.resolver(),
            Role::Source,
            &p.source,
            self.connector_timeout(),
            None,
        )
        .await?;
        let catalog = catalog(&source, &config, p, request.prepared.as_ref()).await?;
        let mut request = request;
        crate::local::begin_run(&mut request, &catalog, &p.streams);
        let config_file = source
            .file("source-config.json", &config)
            .map_err(connector_error)?;
        let catalog_file = catalog_file(&source, &catalog).map_err(connector_error)?;
        let state_file = source
            .file("state.json", &request.state.source)
            .map_err(connector_error)?;
        let flags = [
            ("config", &config_file),
            ("catalog", &catalog_file),
            ("state", &state_file),
        ];
        let mut child = source
            .spawn("read", &flags, Stdio::null())
            .map_err(connector_error)?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| EngineError::Internal(anyhow::anyhow!("stdout is piped")))?;
        let (tx, rx) = Outbox::channel();
        let (cancel_tx, cancel) = oneshot::channel::<()>();
        let relay = SourceRelay {
            child,
            dialect: source.dialect,
            state: request.state.clone(),
            tx,
            by: Emitter::connector(Role::Source, &p.source.name),
        };
        let span = crate::local::run_span(request.run_id.as_deref());
        tokio::spawn(
            async move {
                // The connector's files live as long as it runs.
                let _source = source;
                relay.run(stdout, soft_at, hard_at, cancel).await;
            }
            .instrument(span),
        );
        Ok(Messages::new(rx, Some(cancel_tx)))
    }

    /// Feeds the given messages to the destination's `write` and answers what it emits
    /// (committed states, logs, statuses).
    pub async fn write(&self, p: &PipelineRequest, input: Vec<Message>) -> EngineResult<Messages> {
        let opened = pipeline::open(self.resolver(), p, self.connector_timeout()).await?;
        let catalog = pipeline::selected_catalog(&opened, None).await?;
        pipeline::setup_destination(&opened, &catalog)
            .await
            .map_err(connector_error)?;
        let destination = opened.destination;
        let config_file = destination
            .file("destination-config.json", &opened.destination_config)
            .map_err(connector_error)?;
        let catalog_file = catalog_file(&destination, &catalog).map_err(connector_error)?;
        let mut child = destination
            .spawn(
                "write",
                &[("config", &config_file), ("catalog", &catalog_file)],
                Stdio::piped(),
            )
            .map_err(connector_error)?;
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| EngineError::Internal(anyhow::anyhow!("stdin is piped")))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| EngineError::Internal(anyhow::anyhow!("stdout is piped")))?;
        let dialect = destination.dialect;
        let mut text = String::new();
        for message in &input {
            let line = match dialect {
                Dialect::Native => Some(message.to_line()),
                Dialect::Airbyte => airbyte::to_airbyte(message).map(|m| m.to_line()),
            };
            if let Some(line) = line {
                text.push_str(&line);
                text.push('\n');
            }
        }
        let (tx, rx) = Outbox::channel();
        let by = Emitter::connector(Role::Destination, &p.destination.name);
        let (cancel_tx, mut cancel) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _destination = destination;
            let feed = async move {
                let _ = stdin.write_all(text.as_bytes()).await;
                let _ = stdin.shutdown().await;
            };
            tokio::spawn(feed);
            let mut reader = LineReader::new(BufReader::new(stdout), DEFAULT_MAX_LINE_BYTES);
            loop {
                tokio::select! {
                    _ = &mut cancel => {
                        let _ = child.start_kill();
                        return;
                    }
                    line = reader.next_line() => match line {
                        Some(Ok((_, bytes))) => {
                            for message in parse(bytes, dialect, Role::Destination) {
                                if !tx.send(&by, message) {
                                    let _ = child.start_kill();
                                    return;
                                }
                            }
                        }
                        _ => break,
                    }
                }
            }
            let _ = child.wait().await;
        });
        Ok(Messages::new(rx, Some(cancel_tx)))
    }
}

/// Carries a running source's messages to the reader of [`LocalEngine::read`], then ends them
/// with an `eof`.
struct SourceRelay {
    child: tokio::process::Child,
    dialect: Dialect,
    /// The request's state, with every state the source emits applied.
    state: SyncState,
    tx: Outbox,
    /// Who the source's messages are from (`source/stripe`).
    by: Emitter,
}

/// How a source's run ended, before its exit status is known.
#[derive(Default)]
struct Ending {
    /// A time limit stopped it.
    stopped: Option<EofReason>,
    /// Why it failed: a failed `connection_status` it emitted, or an error reading its stdout.
    failed: Option<String>,
}

impl SourceRelay {
    async fn run(
        mut self,
        stdout: tokio::process::ChildStdout,
        soft_at: Option<Instant>,
        hard_at: Option<Instant>,
        mut cancel: oneshot::Receiver<()>,
    ) {
        let mut reader = LineReader::new(BufReader::new(stdout), DEFAULT_MAX_LINE_BYTES);
        let mut ending = Ending::default();
        let wait = |at: Option<Instant>| async move {
            match at {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        loop {
            tokio::select! {
                _ = &mut cancel => {
                    let _ = self.child.start_kill();
                    return;
                }
                _ = wait(soft_at), if ending.stopped.is_none() => {
                    ending.stopped = Some(EofReason::TimeLimit);
                    if let Some(pid) = self.child.id() {
                        crate::connector::signal_group(pid, libc::SIGTERM);
                    }
                }
                _ = wait(hard_at) => {
                    ending.stopped = Some(EofReason::TimeLimit);
                    let _ = self.child.start_kill();
                    break;
                }
                line = reader.next_line() => match line {
                    None => break,
                    Some(Err(e)) => { ending.failed = Some(e.to_string()); break; }
                    Some(Ok((_, bytes))) => if !self.forward(bytes, &mut ending) {
                        let _ = self.child.start_kill();
                        return;
                    }
                }
            }
        }
        self.end(ending).await;
    }

    /// Sends one line's messages on; false once nobody reads them.
    fn forward(&mut self, line: &[u8], ending: &mut Ending) -> bool {
        for message in parse(line, self.dialect, Role::Source) {
            if let Message::SourceState(s) = &message {
                self.state.apply(s);
            }
            if let Message::ConnectionStatus(s) = &message
                && s.message.is_some()
            {
                ending.failed = s.message.clone();
            }
            if !self.tx.send(&self.by, message) {
                return false;
            }
        }
        true
    }

    /// The `eof`, once the source has exited.
    async fn end(mut self, ending: Ending) {
        let exited = self.child.wait().await.ok();
        let ok = exited.is_some_and(|s| s.success()) && ending.failed.is_none();
        let (status, reason) = match (ending.stopped, ok) {
            (Some(limit), _) => (RunStatus::Started, limit),
            (None, true) => (RunStatus::Succeeded, EofReason::Complete),
            (None, false) => (RunStatus::Failed, EofReason::Error),
        };
        let mut error = None;
        if status == RunStatus::Failed {
            let why = match ending.failed {
                Some(failed) => format!("{}: {failed}", self.by.as_str()),
                None => {
                    let why = format!("the source exited with {exited:?}");
                    self.tx.send(
                        &Emitter::engine(),
                        Message::ConnectionStatus(ConnectionStatus::failed(
                            why.clone(),
                            Some(FailureType::SystemError),
                        )),
                    );
                    why
                }
            };
            error = Some(FailureCode::ConnectorFailed.error(why));
        }
        self.send_eof(status, reason, error);
    }

    fn send_eof(
        &self,
        status: RunStatus,
        reason: EofReason,
        error: Option<sync_protocol::EofError>,
    ) {
        let eof = Eof {
            status,
            reason: Some(reason),
            has_more: status != RunStatus::Succeeded,
            ending_state: Some(self.state.clone()),
            run_progress: None,
            request_progress: None,
            error,
            extra: Default::default(),
        };
        self.tx
            .send(&Emitter::engine(), Message::Eof(Box::new(eof)));
    }
}
