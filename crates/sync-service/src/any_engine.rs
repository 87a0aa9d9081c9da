//! The engine the worker and the API drive: in-process, or a `sync-engine serve`.

use sync_engine::engine::{Engine, EngineError, Messages, PipelineRequest, SyncRequest};
use sync_engine::local::LocalEngine;
use sync_engine::remote::RemoteEngine;
use sync_protocol::{FailureType, Message, Role, Status as CheckStatus};

/// The engine the worker drives: in-process, or a `sync-engine serve` (`--engine-url`).
pub enum AnyEngine {
    /// The engine in this process.
    Local(LocalEngine),
    /// A `sync-engine serve` at `--engine-url`.
    Remote(RemoteEngine),
}

impl AnyEngine {
    pub(crate) async fn sync(
        &self,
        p: &PipelineRequest,
        r: SyncRequest,
    ) -> Result<Messages, EngineError> {
        match self {
            AnyEngine::Local(e) => e.sync(p, r).await,
            AnyEngine::Remote(e) => e.sync(p, r).await,
        }
    }

    /// `teardown` of one side or both: the failures, each naming its connector.
    pub async fn teardown(
        &self,
        p: &PipelineRequest,
        only: Option<Role>,
    ) -> Result<Vec<(Option<FailureType>, String)>, EngineError> {
        let messages = self.teardown_messages(p, only).await?;
        Ok(failures_of(messages).await)
    }

    /// `teardown` of one side or both: its messages.
    pub async fn teardown_messages(
        &self,
        p: &PipelineRequest,
        only: Option<Role>,
    ) -> Result<Messages, EngineError> {
        match self {
            AnyEngine::Local(e) => e.teardown(p, only).await,
            AnyEngine::Remote(e) => e.teardown(p, only).await,
        }
    }

    /// `setup` of one side or both: its messages (config updates among them).
    pub async fn setup(
        &self,
        p: &PipelineRequest,
        only: Option<Role>,
    ) -> Result<Messages, EngineError> {
        match self {
            AnyEngine::Local(e) => e.setup(p, only).await,
            AnyEngine::Remote(e) => e.setup(p, only).await,
        }
    }

    /// A connector's spec.
    pub async fn spec(&self, role: Role, name: &str) -> Result<sync_protocol::Spec, EngineError> {
        match self {
            AnyEngine::Local(e) => e.spec(role, name).await,
            AnyEngine::Remote(e) => e.spec(role, name).await,
        }
    }

    /// The part of a connector's config update (its complete config, from source-stripe's
    /// setup) a pipeline stores: what differs from the config the run was given, without what
    /// setup finds again (`sync_engine::config_update_to_keep`). So the stored config, and the
    /// checkpoint's owner derived from it, change by what the connector made (a webhook
    /// endpoint's secret), never by the account it looked up. `None`: nothing to store.
    pub async fn kept_update(
        &self,
        request: &PipelineRequest,
        update: sync_protocol::Control,
    ) -> Result<Option<sync_protocol::Control>, EngineError> {
        use sync_protocol::Control::{DestinationConfig, SourceConfig};
        let (role, side, wrap): (_, _, fn(serde_json::Value) -> sync_protocol::Control) =
            match update {
                SourceConfig(serde_json::Value::Object(u)) => {
                    (Role::Source, (&request.source, u), SourceConfig)
                }
                DestinationConfig(serde_json::Value::Object(u)) => (
                    Role::Destination,
                    (&request.destination, u),
                    DestinationConfig,
                ),
                _ => return Ok(None),
            };
        let (connector, update) = side;
        let spec = self.spec(role, &connector.name).await?;
        let kept = sync_engine::config_update_to_keep(&connector.config, &spec, update);
        Ok((!kept.is_empty()).then(|| wrap(serde_json::Value::Object(kept))))
    }

    /// The source's catalog, narrowed to the pipeline's streams: a stream it does not offer is
    /// [`EngineError::Invalid`], naming it.
    pub async fn discover(&self, p: &PipelineRequest) -> Result<Messages, EngineError> {
        match self {
            AnyEngine::Local(e) => e.discover(p).await,
            AnyEngine::Remote(e) => e.discover(p).await,
        }
    }

    /// `check` of one side or both: the failures, each naming its connector, with who must act.
    pub async fn check(
        &self,
        p: &PipelineRequest,
        only: Option<Role>,
    ) -> Result<Vec<(Option<FailureType>, String)>, EngineError> {
        let messages = self.check_messages(p, only).await?;
        Ok(failures_of(messages).await)
    }

    /// `check` of one side or both: its messages.
    pub async fn check_messages(
        &self,
        p: &PipelineRequest,
        only: Option<Role>,
    ) -> Result<Messages, EngineError> {
        match self {
            AnyEngine::Local(e) => e.check(p, only).await,
            AnyEngine::Remote(e) => e.check(p, only).await,
        }
    }
}

/// Every message of a run, in order.
pub async fn all_of(mut messages: Messages) -> Vec<Message> {
    let mut all = Vec::new();
    while let Some(message) = messages.next().await {
        all.push(message);
    }
    all
}

/// The failed `connection_status` messages of a run, each naming its connector.
pub async fn failures_of(messages: Messages) -> Vec<(Option<FailureType>, String)> {
    failures_in(&all_of(messages).await)
}

/// The failed `connection_status` messages among these, each naming its connector.
pub fn failures_in(messages: &[Message]) -> Vec<(Option<FailureType>, String)> {
    let mut failures = Vec::new();
    for message in messages {
        if let Message::ConnectionStatus(status) = message
            && status.status == CheckStatus::Failed
        {
            let who = status
                .extra
                .get(sync_engine::engine::EMITTED_BY)
                .and_then(|v| v.as_str())
                .unwrap_or("a connector")
                .to_owned();
            let why = status.message.clone().unwrap_or_default();
            failures.push((status.failure_type, format!("{who}: {why}")));
        }
    }
    failures
}
