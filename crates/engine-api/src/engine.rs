//! The engine's operations behind one interface, implemented in-process (`sync-engine-runtime`)
//! and over HTTP (`sync-engine-client`); the CLI and the HTTP server drive either the same way.
//!
//! Every operation that runs connectors answers with a stream of protocol messages. A sync's
//! stream carries committed `source_state`s (never records), `stream_status`, `control`, `log`,
//! `progress` and `connection_status` messages, and ends with exactly one `eof`. Dropping the
//! stream cancels the operation: its connectors are stopped.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sync_protocol::{Catalog, Message, Role, Spec, SyncState};
use tokio::sync::{mpsc, oneshot};

use crate::stream_choice::StreamChoice;

/// One connector of a pipeline: its name (`stripe`, `postgres`, an executable's suffix) and
/// its config.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorConfig {
    /// The connector's name, resolved like `sync --source NAME`.
    pub name: String,
    /// Its config, validated against the connector's spec before anything runs.
    pub config: Map<String, Value>,
}

/// What every pipeline operation takes.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineRequest {
    /// Where records come from.
    pub source: ConnectorConfig,
    /// Where they go.
    pub destination: ConnectorConfig,
    /// The streams to sync; `None`: every stream the source offers.
    pub streams: Option<Vec<StreamChoice>>,
    /// Which sync (pipeline) this is: a destination whose spec has a `sync_id` property gets
    /// it there, so that it knows which syncs use its tables.
    pub sync_id: Option<String>,
}

impl PipelineRequest {
    /// The source's config as a JSON value.
    pub fn source_config(&self) -> Value {
        Value::Object(self.source.config.clone())
    }

    /// The destination's config as a JSON value.
    pub fn destination_config(&self) -> Value {
        Value::Object(self.destination.config.clone())
    }
}

/// A sync request: where to resume, and when to stop.
#[derive(Debug, Clone, Default)]
pub struct SyncRequest {
    /// The checkpoint to resume from (an earlier `eof.ending_state`).
    pub state: SyncState,
    /// Hard limit in seconds: both connectors are stopped, what is committed stands.
    pub time_limit: Option<f64>,
    /// Graceful limit in seconds: the source stops, the destination commits what it has.
    pub soft_time_limit: Option<f64>,
    /// Stop gracefully after this many source states.
    pub state_limit: Option<u64>,
    /// The run's name: kept in `eof.ending_state.sync_run.run_id` and shown in the logs.
    pub run_id: Option<String>,
    /// Push-mode input handed to the source (`source_input` payloads, e.g. Stripe events).
    pub input: Vec<Value>,
    /// The source's catalog from an earlier discover, given by a caller that already ran
    /// setup for this pipeline's streams (sync-service applying webhook events between steps):
    /// the run takes it as discovered and runs neither discover nor setup.
    pub prepared: Option<Catalog>,
}

/// Why an operation did not start. Failures once a stream has started are in-band.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The request itself is wrong (an unknown connector or stream, a config the connector's
    /// spec refuses); the message names the field.
    #[error("{0}")]
    Invalid(String),
    /// No such thing (an unknown connector type in a lookup).
    #[error("{0}")]
    NotFound(String),
    /// The engine runs as many operations as it may; try again later.
    #[error("{0}")]
    Busy(String),
    /// A connector failed before the operation could start (discover, setup).
    #[error("{0}")]
    Connector(String),
    /// Anything else.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl EngineError {
    /// The CLI exit code for a failure of this kind.
    pub fn exit_code(&self) -> u8 {
        match self {
            EngineError::Invalid(_) | EngineError::NotFound(_) => sync_protocol::exit::USAGE,
            _ => sync_protocol::exit::FAILED,
        }
    }
}

/// The result of an engine operation.
pub type EngineResult<T> = Result<T, EngineError>;

/// The engine's operations.
pub trait Engine: Send + Sync {
    /// A connector's spec (its config's JSON Schema).
    fn spec(&self, role: Role, name: &str) -> impl Future<Output = EngineResult<Spec>> + Send;

    /// `check` of both connectors, or of one (`only`): one `connection_status` each, tagged
    /// `_emitted_by`.
    fn check(
        &self,
        pipeline: &PipelineRequest,
        only: Option<Role>,
    ) -> impl Future<Output = EngineResult<Messages>> + Send;

    /// The source's catalog, narrowed to the pipeline's streams when it names some.
    fn discover(
        &self,
        pipeline: &PipelineRequest,
    ) -> impl Future<Output = EngineResult<Messages>> + Send;

    /// `setup` of both connectors (or one) for the selected streams: `control` and `log`
    /// messages.
    fn setup(
        &self,
        pipeline: &PipelineRequest,
        only: Option<Role>,
    ) -> impl Future<Output = EngineResult<Messages>> + Send;

    /// `teardown` of both connectors (or one).
    fn teardown(
        &self,
        pipeline: &PipelineRequest,
        only: Option<Role>,
    ) -> impl Future<Output = EngineResult<Messages>> + Send;

    /// A sync: setup, then read into write until the source ends or a limit stops it.
    fn sync(
        &self,
        pipeline: &PipelineRequest,
        request: SyncRequest,
    ) -> impl Future<Output = EngineResult<Messages>> + Send;
}

/// Who emitted a message: `source/<name>`, `destination/<name>` or `engine` (the values of
/// `_emitted_by` on the lines the engine writes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emitter(Arc<str>);

impl Emitter {
    /// The engine itself (progress, eof, its own failures and warnings).
    pub fn engine() -> Emitter {
        static ENGINE: std::sync::OnceLock<Emitter> = std::sync::OnceLock::new();
        ENGINE.get_or_init(|| Emitter(Arc::from("engine"))).clone()
    }

    /// A connector of the pipeline, by the name the pipeline gives it.
    pub fn connector(role: Role, name: &str) -> Emitter {
        Emitter(Arc::from(emitted_by(role, name)))
    }

    /// As another engine named it on its lines.
    pub fn named(text: &str) -> Emitter {
        Emitter(Arc::from(text))
    }

    /// `source/stripe`, `engine`…
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A message, who emitted it and when the engine saw it.
#[derive(Debug, Clone)]
pub struct Emitted {
    /// The message.
    pub message: Message,
    /// Who emitted it.
    pub by: Emitter,
    /// When the engine saw it.
    pub at: DateTime<Utc>,
}

impl Emitted {
    /// `message` from `by`, seen now.
    pub fn new(by: &Emitter, message: Message) -> Emitted {
        Emitted {
            message,
            by: by.clone(),
            at: Utc::now(),
        }
    }

    /// The line a caller gets: the message with `_emitted_by` and `_ts` on its envelope.
    pub fn to_line(&self) -> String {
        let ts = self.at.to_rfc3339_opts(SecondsFormat::Millis, true);
        self.message.to_line_stamped(self.by.as_str(), &ts)
    }
}

/// Where an operation sends its messages, each with who emitted it.
#[derive(Debug, Clone)]
pub struct Outbox(mpsc::UnboundedSender<Emitted>);

impl Outbox {
    /// An outbox and the receiver [`Messages::new`] reads.
    pub fn channel() -> (Outbox, mpsc::UnboundedReceiver<Emitted>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Outbox(tx), rx)
    }

    /// Sends `message` from `by`; false once nobody reads the messages any more.
    pub fn send(&self, by: &Emitter, message: Message) -> bool {
        self.forward(Emitted::new(by, message))
    }

    /// Sends a message as it was stamped (by another engine); false once nobody reads.
    pub fn forward(&self, emitted: Emitted) -> bool {
        self.0.send(emitted).is_ok()
    }
}

/// The messages of an operation, in order. Dropping it cancels the operation.
pub struct Messages {
    rx: mpsc::UnboundedReceiver<Emitted>,
    /// Dropped with the stream: tells the operation to stop.
    _cancel: Option<oneshot::Sender<()>>,
}

impl Messages {
    /// A stream fed through `rx`; dropping it drops `cancel`.
    pub fn new(rx: mpsc::UnboundedReceiver<Emitted>, cancel: Option<oneshot::Sender<()>>) -> Self {
        Messages {
            rx,
            _cancel: cancel,
        }
    }

    /// A stream of messages already at hand.
    pub fn of(messages: Vec<Emitted>) -> Self {
        let (outbox, rx) = Outbox::channel();
        for message in messages {
            outbox.forward(message);
        }
        Messages::new(rx, None)
    }

    /// The next message; `None` once the operation ended.
    pub async fn next(&mut self) -> Option<Message> {
        self.rx.recv().await.map(|e| e.message)
    }

    /// The next message with who emitted it and when; `None` once the operation ended.
    pub async fn next_emitted(&mut self) -> Option<Emitted> {
        self.rx.recv().await
    }
}

impl futures_util::Stream for Messages {
    type Item = Emitted;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Emitted>> {
        self.rx.poll_recv(cx)
    }
}

/// The tag on a message saying which connector emitted it (`source/stripe`).
pub const EMITTED_BY: &str = "_emitted_by";

/// `source/<name>` or `destination/<name>`.
pub fn emitted_by(role: Role, name: &str) -> String {
    format!("{}/{name}", role.as_str())
}

/// `only` in a request: `source` or `destination`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Only {
    /// The source only.
    Source,
    /// The destination only.
    Destination,
}

impl From<Only> for Role {
    fn from(only: Only) -> Role {
        match only {
            Only::Source => Role::Source,
            Only::Destination => Role::Destination,
        }
    }
}
